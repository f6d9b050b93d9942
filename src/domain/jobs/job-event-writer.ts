import { TERMINAL_EVENT_KINDS, type JobEvent } from "./job-record.ts";
import type { JobsStore } from "./jobs-store.ts";

/** Thrown when a run's next event position was taken: another instance took the job over, or it ended. */
export class PositionTaken extends Error {
  readonly jobId: string;
  readonly sequence: number;
  constructor(jobId: string, sequence: number) {
    super(`event ${sequence} of job ${jobId} was written by someone else`);
    this.name = "PositionTaken";
    this.jobId = jobId;
    this.sequence = sequence;
  }
}

/** Text of one OUTPUT event at most (a long burst of deltas becomes several events). */
const MAX_DELTA_CHARS = 16_384;

export type NewEvent = Omit<JobEvent, "jobId" | "sequence" | "time" | "attempt">;

/**
 * The events of one run, written in order at the positions after the last one the run knows, in one
 * insert per flush. Deltas that arrive between two flushes are joined into one OUTPUT event, so a fast
 * provider costs one database write per `flushMs`, not one per token; a watcher sees them at most
 * `flushMs` later. When a position turns out to be taken, the run has been superseded (another instance
 * took the job over, or a cancellation ended it): every later `flush` rejects with {@link PositionTaken},
 * and the run must stop without writing anything else.
 */
export interface RunEventWriter {
  /** Queues an event; OUTPUT text joins a queued OUTPUT event. Written by the next flush. */
  append(event: NewEvent): void;
  /** Writes everything queued now (waiting for a flush in progress first). */
  flush(): Promise<void>;
  /** The sequence of the last event written. */
  readonly lastSequence: number;
  /** The OUTPUT text written so far by this run. */
  readonly writtenOutput: string;
  /** Stops the timer; queued events are dropped unless flushed first. */
  close(): void;
}

export function createRunEventWriter(deps: {
  store: JobsStore;
  jobId: string;
  attempt: number;
  /** The sequence of the last event before this run's first. */
  afterSequence: number;
  flushMs: number;
  /** Told after each write, with the last sequence written (local watchers wake at once). */
  onWritten?: (jobId: string, lastSequence: number) => void;
  /** A background flush failed (the run sees it at its next explicit flush). */
  onError?: (error: unknown) => void;
  now?: () => Date;
}): RunEventWriter {
  const now = deps.now ?? (() => new Date());
  let pending: NewEvent[] = [];
  let last = deps.afterSequence;
  let output = "";
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let failure: unknown;

  const write = async () => {
    if (failure !== undefined) throw failure;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const time = now();
    const events: JobEvent[] = batch.map((e, i) => ({ ...e, jobId: deps.jobId, sequence: last + 1 + i, time, attempt: deps.attempt }));
    let written: number;
    try {
      written = await deps.store.insertEvents(events);
    } catch (error) {
      failure = error;
      throw error;
    }
    for (const event of events.slice(0, written)) if (event.kind === "output") output += event.textDelta ?? "";
    last += written;
    if (written > 0) deps.onWritten?.(deps.jobId, last);
    if (written < events.length) {
      failure = new PositionTaken(deps.jobId, last + 1);
      throw failure;
    }
  };

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    running = running.catch(() => undefined).then(write);
    return running;
  };

  return {
    append(event) {
      const tail = pending.at(-1);
      if (event.kind === "output" && tail?.kind === "output" && (tail.textDelta ?? "").length + (event.textDelta ?? "").length <= MAX_DELTA_CHARS) {
        pending[pending.length - 1] = { ...tail, textDelta: (tail.textDelta ?? "") + (event.textDelta ?? "") };
      } else {
        pending.push(event);
      }
      if (!timer && failure === undefined) {
        timer = setTimeout(() => void flush().catch((error: unknown) => deps.onError?.(error)), deps.flushMs);
      }
    },
    flush,
    get lastSequence() {
      return last;
    },
    get writtenOutput() {
      return output;
    },
    close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

/**
 * Writes one event at the position after the job's last, for writers that hold no run's sequence (a
 * finaliser whose run is gone). A taken position is read: if it is a terminal event the job has already
 * ended and that event is returned instead; otherwise the next position is tried.
 */
export async function appendAfterLast(store: JobsStore, jobId: string, event: Omit<JobEvent, "sequence">, hint: number): Promise<{ event: JobEvent; written: boolean }> {
  const lastEvent = await store.lastEvent(jobId, hint);
  if (!lastEvent && hint > 0) throw new Error(`the events of job ${jobId} are no longer live`);
  if (lastEvent && TERMINAL_EVENT_KINDS.has(lastEvent.kind)) return { event: lastEvent, written: false };
  let last = lastEvent?.sequence ?? 0;
  for (let tries = 0; tries < 100; tries++) {
    const candidate: JobEvent = { ...event, sequence: last + 1 };
    if ((await store.insertEvents([candidate])) === 1) return { event: candidate, written: true };
    const taken = await store.getEvent(jobId, last + 1);
    if (taken && TERMINAL_EVENT_KINDS.has(taken.kind)) return { event: taken, written: false };
    last += 1;
  }
  throw new Error(`could not append an event to job ${jobId}`);
}
