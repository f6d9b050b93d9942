import { DomainError } from "../errors.ts";
import type { SealedAuditRecord } from "./audit-chain.ts";
import { matchesAuditFilter, type AuditFilter } from "./audit-filter.ts";
import type { AuditLogStore } from "./audit-log-store.ts";

export type WatchMessage = { readonly event: SealedAuditRecord } | { readonly heartbeat: { readonly time: Date; readonly headSeq: number } };

export interface AuditWatchOptions {
  readonly store: AuditLogStore;
  /** Idle keep-alive period. */
  readonly heartbeatMs: number;
  /** Fastest and slowest head poll; the interval doubles while nothing changes. */
  readonly minPollMs?: number;
  readonly maxPollMs?: number;
  readonly onError?: (err: unknown) => void;
}

/** Live tail of the audit log (WatchAuditEvents). */
export interface AuditWatch {
  /**
   * Events matching `filter` after `afterSeq` (undefined: from the current head on), then live, with a
   * heartbeat after `heartbeatMs` without an event. Throws `out_of_range` when `afterSeq` is beyond the head.
   */
  watch(filter: AuditFilter, afterSeq: number | undefined, signal: AbortSignal): AsyncGenerator<WatchMessage>;
  /** Ends every watch and the poller. */
  stop(): void;
}

const BATCH = 500;
const NEAR = 50;

/**
 * Live tail of the audit log across instances. There are no change streams on FerretDB, so one poller
 * per process watches the head of the chain (a point read of `head + 1`), backing off from `minPollMs`
 * to `maxPollMs` while idle and snapping back on every change, and only while someone watches. Each
 * watcher reads what is new itself, by seq, so a watcher never misses or repeats an event: seqs are
 * dense and immutable.
 */
export function createAuditWatch(options: AuditWatchOptions): AuditWatch {
  const minPollMs = options.minPollMs ?? 20;
  const maxPollMs = options.maxPollMs ?? 160;
  let head = -1;
  let watchers = 0;
  let waiters: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let interval = minPollMs;
  let stopped = false;

  const wake = () => {
    const current = waiters;
    waiters = [];
    for (const resolve of current) resolve();
  };

  const poll = async () => {
    timer = undefined;
    if (stopped || watchers === 0) return;
    try {
      const found = head < 0 ? await options.store.head() : await advance(head);
      const seq = found?.seq ?? 0;
      if (seq !== head) {
        head = seq;
        interval = minPollMs;
        wake();
      } else {
        interval = Math.min(interval * 2, maxPollMs);
      }
    } catch (err) {
      options.onError?.(err);
      interval = maxPollMs;
    }
    schedule();
  };
  // Cheap in the common case: one point read says whether anything was appended.
  const advance = async (known: number) => ((await options.store.get(known + 1)) ? await options.store.head() : { seq: known });

  const schedule = () => {
    if (timer || stopped || watchers === 0) return;
    timer = setTimeout(() => void poll(), interval);
    timer.unref();
  };

  const changed = (ms: number, signal: AbortSignal, position: number) =>
    new Promise<void>((resolve) => {
      if (head > position) return resolve(); // the poller saw an append this watcher has not read yet
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      waiters.push(done);
    });

  return {
    async *watch(filter: AuditFilter, afterSeq: number | undefined, signal: AbortSignal): AsyncGenerator<WatchMessage> {
      const current = (await options.store.head())?.seq ?? 0;
      if (afterSeq !== undefined && afterSeq > current) throw new DomainError("out_of_range", `after_sequence ${afterSeq} is beyond the head of the log (${current})`);
      let position = afterSeq ?? current;
      if (head < current) head = current;
      watchers += 1;
      interval = minPollMs;
      schedule();
      try {
        let lastSent = Date.now();
        while (!signal.aborted && !stopped) {
          // Far behind (a replay): one scan per batch; near the head: a lookup per new event.
          const batch = head - position > NEAR ? await options.store.range(position + 1, Number.MAX_SAFE_INTEGER, BATCH) : await options.store.next(position, BATCH);
          for (const event of batch) {
            position = event.seq;
            if (!matchesAuditFilter({ ...filter, endTime: undefined }, event)) continue;
            yield { event };
            lastSent = Date.now();
          }
          if (batch.length === BATCH) continue;
          const idle = Date.now() - lastSent;
          if (idle >= options.heartbeatMs) {
            yield { heartbeat: { time: new Date(), headSeq: Math.max(position, head) } };
            lastSent = Date.now();
            continue;
          }
          await changed(options.heartbeatMs - idle, signal, position);
        }
      } finally {
        watchers -= 1;
      }
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake();
    },
  };
}
