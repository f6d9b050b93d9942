import { DomainError } from "../errors.ts";

/**
 * Runs at most `slots` tasks at once and queues up to `maxQueued` more; past that it refuses with
 * RESOURCE_EXHAUSTED instead of letting work pile up without bound.
 *
 * Password hashing needs this: argon2 runs in libuv's threadpool (4 threads by default), so a burst of
 * logins on a 2-core machine keeps every core busy and starves the event loop — every other RPC, cheap
 * or not, then waits for a core. Leaving one core free keeps the gateway responsive under a login storm.
 */
export function createConcurrencyLimit(slots: number, maxQueued: number) {
  let running = 0;
  const waiting: Array<() => void> = [];

  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };

  return async function run<T>(task: () => Promise<T>): Promise<T> {
    if (running >= slots) {
      if (waiting.length >= maxQueued) throw new DomainError("resource_exhausted", "the server is busy; retry shortly", { reason: "rate_limited", retryAfterMs: 1_000 });
      // The slot is handed over by release(): `running` stays counted for the waiter.
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else {
      running++;
    }
    try {
      return await task();
    } finally {
      release();
    }
  };
}
