import { randomUUID } from "node:crypto";
import type { AuditEventInput, AuditRecord, AuditStore } from "./audit-event.ts";
import { sanitizeAuditEvent } from "./sanitize-audit-event.ts";

export type { AuditActor, AuditEventInput, AuditOutcome, AuditRecord, AuditStore } from "./audit-event.ts";
export { canonicalAuditContent } from "./canonical-audit-content.ts";

/**
 * Records security events. Every event is validated and made safe to store before it is accepted
 * (see `sanitizeAuditEvent`): an invalid `type`, `outcome` or actor kind throws a TypeError at once,
 * from `record` as from `recordNow`, because it is a bug in the caller.
 */
export interface AuditRecorder {
  /**
   * Security-critical events: resolves only after the event is durably written (the RPC reports success
   * after), with the event's id (AuditEvent.id), which a response may hand to the caller. A failed write
   * rejects and is not retried — the caller fails the RPC instead.
   */
  recordNow(event: AuditEventInput): Promise<string>;
  /** Everything else: queued and written in batches (every ~250 ms or 100 events); never throws to the caller. */
  record(event: AuditEventInput): void;
  /**
   * Writes everything queued. Called on graceful shutdown: nothing queued may be lost. Rejects if a write
   * fails; the unwritten events stay queued (and are retried) so a later flush can still write them.
   */
  flush(): Promise<void>;
}

export interface AuditRecorderDeps {
  store: AuditStore;
  now?: () => Date;
  /** Background write failures and dropped events; defaults to stderr. Must not throw. */
  onError?: (err: unknown) => void;
  /** How long a queued event may wait before a batch is written. Default 250 ms. */
  flushIntervalMs?: number;
  /** Events per write; a full batch is written at once. Default 100. */
  maxBatchSize?: number;
  /**
   * Most events held in memory (queued or being written). Default 10,000. When the database is down
   * long enough to fill it, the oldest queued events are dropped — and reported through `onError` —
   * so that memory stays bounded; security-critical events never queue (`recordNow` writes directly).
   */
  maxQueueSize?: number;
}

/**
 * Creates the recorder a process uses for all its audit events. Records carry a random `recorderId`
 * for this recorder and a `recorderSeq` that increases by one per accepted event, in call order.
 */
export function createAuditRecorder(deps: AuditRecorderDeps): AuditRecorder {
  const now = deps.now ?? (() => new Date());
  const onError = deps.onError ?? ((err: unknown) => console.error("audit recorder:", err));
  const flushIntervalMs = deps.flushIntervalMs ?? 250;
  const maxBatchSize = deps.maxBatchSize ?? 100;
  const maxQueueSize = Math.max(deps.maxQueueSize ?? 10_000, maxBatchSize);
  const recorderId = randomUUID();
  let seq = 0;

  const queue: AuditRecord[] = [];
  let inFlight = 0;
  let writing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const accept = (event: AuditEventInput): AuditRecord => sanitizeAuditEvent(event, { time: now(), recorderId, recorderSeq: ++seq });

  // The oldest go first: recent events are likelier to matter to whoever investigates the outage.
  const enforceBound = () => {
    const excess = queue.length + inFlight - maxQueueSize;
    if (excess <= 0) return;
    const dropped = queue.splice(0, Math.min(excess, queue.length));
    safely(onError, new Error(`audit queue full (${maxQueueSize}); dropped the ${dropped.length} oldest queued event(s)`));
  };

  // One writer at a time keeps batches in recorderSeq order and never writes an event twice at once.
  const writeQueued = (): Promise<void> => {
    writing ??= (async () => {
      while (queue.length > 0) {
        const batch = queue.splice(0, maxBatchSize);
        inFlight = batch.length;
        try {
          await deps.store.append(batch);
        } catch (err) {
          queue.unshift(...batch);
          throw err;
        } finally {
          inFlight = 0;
          enforceBound();
        }
      }
    })().finally(() => {
      writing = undefined;
    });
    return writing;
  };

  const tick = () => {
    timer = undefined;
    writeQueued().then(schedule, (err: unknown) => {
      safely(onError, err);
      schedule(); // the failed batch is back in the queue: retry on the next tick
    });
  };

  function schedule() {
    if (timer || queue.length === 0) return;
    const delay = queue.length >= maxBatchSize ? 0 : flushIntervalMs;
    timer = setTimeout(tick, delay);
    timer.unref(); // a pending batch must not keep a finished process alive; shutdown calls flush()
  }

  return {
    recordNow(event) {
      const record = accept(event); // throws synchronously for a malformed event
      return deps.store.append([record]).then(() => record._id);
    },

    record(event) {
      queue.push(accept(event));
      enforceBound();
      if (queue.length >= maxBatchSize && timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      schedule();
    },

    async flush() {
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      try {
        for (;;) {
          if (writing)
            await writing.catch(() => undefined); // a failed background write is retried below
          else if (queue.length === 0) return;
          else await writeQueued();
        }
      } finally {
        schedule();
      }
    },
  };
}

function safely(onError: (err: unknown) => void, err: unknown): void {
  try {
    onError(err);
  } catch {
    // onError is the last resort; there is nowhere left to report its own failure.
  }
}
