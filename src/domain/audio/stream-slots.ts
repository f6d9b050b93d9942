import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";

/**
 * Open audio streams per principal (user or API key, counted as the rate limiter counts them): each
 * stream holds an engine session and buffers, so one caller may not hold more than `maxPerPrincipal`
 * at once. Beyond that, RESOURCE_EXHAUSTED until one of theirs ends.
 */
export function createStreamSlots(maxPerPrincipal: number) {
  const open = new Map<string, number>();
  return {
    /** Takes a slot; returns the function that gives it back (idempotent). */
    acquire(principal: Principal): () => void {
      const key = `${principal.kind}:${principal.id}`;
      const count = open.get(key) ?? 0;
      if (count >= maxPerPrincipal) {
        throw new DomainError("resource_exhausted", `too many open audio streams: at most ${maxPerPrincipal} per caller at once`);
      }
      open.set(key, count + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const now = (open.get(key) ?? 1) - 1;
        if (now <= 0) open.delete(key);
        else open.set(key, now);
      };
    },
    /** Streams open now, over all principals. */
    total(): number {
      let sum = 0;
      for (const n of open.values()) sum += n;
      return sum;
    },
  };
}
