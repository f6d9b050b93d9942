import type { JobsStore } from "./jobs-store.ts";

/**
 * Tells WatchJob streams when a job's next event exists, across instances. One poller per process,
 * only while someone waits: each poll is one query of point reads by `_id` — the next position of every
 * watched job — so its cost follows the number of watched jobs, never the size of the event log. It
 * backs off from `minPollMs` to `maxPollMs` while nothing arrives and snaps back when something does.
 * Events written by this process wake its watchers at once ({@link JobEventTail.written}), and a change
 * stream, where the database has one, pokes the poller.
 */
export interface JobEventTail {
  /**
   * Resolves once the event at `sequence` of `jobId` exists (as far as a poll or a local write saw), or
   * after `maxWaitMs` at the latest (the caller looks again), or when `signal` aborts.
   */
  waitFor(jobId: string, sequence: number, signal: AbortSignal): Promise<void>;
  /** Events up to `lastSequence` of `jobId` were written by this process. */
  written(jobId: string, lastSequence: number): void;
  /** Poll now (a change stream saw new events). */
  poke(): void;
  stop(): void;
}

interface Waiter {
  readonly sequence: number;
  readonly resolve: () => void;
}

export function createJobEventTail(deps: { store: JobsStore; minPollMs?: number; maxPollMs?: number; maxWaitMs?: number; onError?: (error: unknown) => void }): JobEventTail {
  const minPollMs = deps.minPollMs ?? 20;
  const maxPollMs = deps.maxPollMs ?? 160;
  const maxWaitMs = deps.maxWaitMs ?? 5_000;
  const waiting = new Map<string, Waiter[]>();
  let timer: NodeJS.Timeout | undefined;
  let interval = minPollMs;
  let polling = false;
  let stopped = false;

  // Each waiter's resolve removes it from the map.
  const wake = (jobId: string, upTo: number) => {
    for (const w of waiting.get(jobId) ?? []) if (w.sequence <= upTo) w.resolve();
  };

  const poll = async () => {
    timer = undefined;
    if (stopped || waiting.size === 0) return;
    polling = true;
    try {
      const positions = [...waiting].map(([jobId, list]) => ({ jobId, sequence: Math.min(...list.map((w) => w.sequence)) }));
      const found = await deps.store.existingEvents(positions);
      for (const event of found) wake(event.jobId, event.sequence);
      interval = found.length > 0 ? minPollMs : Math.min(interval * 2, maxPollMs);
    } catch (error) {
      deps.onError?.(error);
      interval = maxPollMs;
    } finally {
      polling = false;
    }
    schedule();
  };

  const schedule = () => {
    if (timer || polling || stopped || waiting.size === 0) return;
    timer = setTimeout(() => void poll(), interval);
    timer.unref();
  };

  return {
    waitFor(jobId, sequence, signal) {
      return new Promise<void>((resolve) => {
        if (signal.aborted || stopped) return resolve();
        const done = () => {
          clearTimeout(limit);
          signal.removeEventListener("abort", done);
          const list = waiting.get(jobId)?.filter((w) => w !== waiter);
          if (list?.length) waiting.set(jobId, list);
          else waiting.delete(jobId);
          resolve();
        };
        const waiter: Waiter = { sequence, resolve: done };
        const limit = setTimeout(done, maxWaitMs);
        signal.addEventListener("abort", done, { once: true });
        waiting.set(jobId, [...(waiting.get(jobId) ?? []), waiter]);
        interval = minPollMs;
        schedule();
      });
    },
    written(jobId, lastSequence) {
      wake(jobId, lastSequence);
    },
    poke() {
      interval = minPollMs;
      if (timer) clearTimeout(timer);
      timer = undefined;
      schedule();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const list of [...waiting.values()]) for (const w of list) w.resolve();
    },
  };
}
