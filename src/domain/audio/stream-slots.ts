import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";

/** What the registry can tell about an open stream. */
export interface OpenStreamStats {
  readonly principal: string;
  readonly bufferedBytes: number;
  readonly producedBytes: number;
}

/**
 * Open audio streams per principal (user or API key, counted as the rate limiter counts them): each
 * stream holds an engine session and buffers, so one caller may not hold more than `maxPerPrincipal`
 * at once. Beyond that, RESOURCE_EXHAUSTED until one of theirs ends.
 */
export function createStreamSlots(maxPerPrincipal: number) {
  const open = new Map<string, number>();
  const live = new Map<symbol, { principal: string; stats: () => { bufferedBytes: number; producedBytes: number } }>();
  return {
    /** Takes a slot; returns the function that gives it back (idempotent). */
    acquire(principal: Principal): { release: () => void; track: (stats: () => { bufferedBytes: number; producedBytes: number }) => void } {
      const key = `${principal.kind}:${principal.id}`;
      const count = open.get(key) ?? 0;
      if (count >= maxPerPrincipal) {
        throw new DomainError("resource_exhausted", `too many open audio streams: at most ${maxPerPrincipal} per caller at once`);
      }
      open.set(key, count + 1);
      const id = Symbol(key);
      let released = false;
      return {
        track(stats) {
          if (!released) live.set(id, { principal: key, stats });
        },
        release() {
          if (released) return;
          released = true;
          live.delete(id);
          const now = (open.get(key) ?? 1) - 1;
          if (now <= 0) open.delete(key);
          else open.set(key, now);
        },
      };
    },
    /** The streams open now, with their buffer figures. */
    snapshot(): OpenStreamStats[] {
      return [...live.values()].map((s) => ({ principal: s.principal, ...s.stats() }));
    },
    /** Streams open now, over all principals. */
    total(): number {
      let sum = 0;
      for (const n of open.values()) sum += n;
      return sum;
    },
  };
}
