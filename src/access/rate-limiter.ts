import type { RateLimitClassName } from "../config/config.ts";

/** The outcome of taking one request from a budget. */
export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

export interface RateLimiter<C extends string = RateLimitClassName> {
  /**
   * Takes one request from `subject`'s budget in `rateClass`; `scale` multiplies the configured budget
   * (an API key's tier). A subject keeps one scale: it is part of the bucket.
   */
  take(rateClass: C, subject: string, scale?: number): RateDecision;
  /** Whether `take` would allow a request now, without taking one (for budgets spent only on failure). */
  peek(rateClass: C, subject: string, scale?: number): RateDecision;
  /** How many (class, subject) budgets are held in memory. */
  readonly size: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
  capacity: number;
}

/**
 * Per-instance token buckets: each (class, subject) may burst up to its per-minute budget and refills
 * continuously. Memory is bounded: past `maxSubjects`, full buckets (subjects that have been idle long
 * enough to refill) are dropped first, and if none is full the oldest entries go.
 */
export function createRateLimiter<C extends string = RateLimitClassName>(budgets: Readonly<Record<C, number>>, options: { now?: () => number; maxSubjects?: number } = {}): RateLimiter<C> {
  const now = options.now ?? (() => performance.now());
  const maxSubjects = options.maxSubjects ?? 100_000;
  const buckets = new Map<string, Bucket>();

  function refill(bucket: Bucket, capacity: number, at: number): void {
    const perMs = capacity / 60_000;
    bucket.tokens = Math.min(capacity, bucket.tokens + (at - bucket.updatedMs) * perMs);
    bucket.updatedMs = at;
  }

  function evict(at: number): void {
    for (const [key, bucket] of buckets) {
      refill(bucket, bucket.capacity, at);
      if (bucket.tokens >= bucket.capacity) buckets.delete(key);
    }
    // Still too many: Map iteration is insertion order, so this drops the oldest subjects.
    for (const key of buckets.keys()) {
      if (buckets.size <= maxSubjects * 0.9) break;
      buckets.delete(key);
    }
  }

  return {
    get size() {
      return buckets.size;
    },
    take(rateClass, subject, scale = 1) {
      const capacity = Math.max(1, Math.round(budgets[rateClass] * scale));
      const at = now();
      const key = `${rateClass}|${scale}|${subject}`;
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= maxSubjects) evict(at);
        bucket = { tokens: capacity, updatedMs: at, capacity };
        buckets.set(key, bucket);
      } else {
        refill(bucket, capacity, at);
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { allowed: true };
      }
      return { allowed: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / (capacity / 60_000)) };
    },
    peek(rateClass, subject, scale = 1) {
      const bucket = buckets.get(`${rateClass}|${scale}|${subject}`);
      if (bucket === undefined) return { allowed: true };
      refill(bucket, bucket.capacity, now());
      return bucket.tokens >= 1 ? { allowed: true } : { allowed: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / (bucket.capacity / 60_000)) };
    },
  };
}
