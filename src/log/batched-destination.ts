import type { DestinationStream } from "pino";

/** A destination that can be flushed (pino's sonic-boom destinations can). */
export interface FlushableDestination extends DestinationStream {
  flush(callback?: (error?: Error | null) => void): void;
  flushSync(): void;
}

export interface BatchOptions {
  /** Lines are passed on once this many characters are gathered… */
  readonly batchChars: number;
  /** …or at the latest this long after they were written. */
  readonly intervalMs: number;
}

/**
 * A log destination that gathers lines in an array and hands them to `inner` joined, as one string, once
 * `batchChars` are gathered or `intervalMs` has passed — in the order they were written.
 *
 * Why: pino's sonic-boom does per-write work that grows with what it holds — `Buffer.byteLength` of its
 * whole pending buffer (a string built by `+=`, flattened again on every call) — and at one access line
 * per RPC that cost ~10 µs of each small call on a slow machine. Here a line costs an array push; the
 * byte count and the system call are paid once per batch. Every logger writing here (pino's lines and
 * the direct access line share the one destination) goes through the same array, so their order is kept.
 *
 * Nothing is lost on the way out: `flush` and `flushSync` first pass on what is gathered (pino calls
 * `flushSync` after `logger.fatal`), and so does the process's `exit` (after `process.exit`, say), which
 * then flushes `inner` synchronously before sonic-boom's own exit handler runs.
 */
export function createBatchedDestination(inner: FlushableDestination, options: BatchOptions): FlushableDestination {
  let pending: string[] = [];
  let pendingChars = 0;

  const passOn = () => {
    if (pending.length === 0) return;
    const text = pending.length === 1 ? pending[0]! : pending.join("");
    pending = [];
    pendingChars = 0;
    inner.write(text);
  };

  setInterval(() => {
    passOn();
    // flush() throws while a previous write is still in progress; the next tick will catch up.
    try {
      inner.flush();
    } catch {
      // nothing to do: the write in flight takes the lines with it or the next flush does
    }
  }, options.intervalMs).unref();

  // Before sonic-boom's exit handler (registered when `inner` was made), so that it writes these too.
  process.prependListener("exit", () => {
    passOn();
    try {
      inner.flushSync();
    } catch {
      // a closed or broken stdout: nothing more can be written
    }
  });

  return {
    write(line: string) {
      pending.push(line);
      pendingChars += line.length;
      if (pendingChars >= options.batchChars) passOn();
    },
    flush(callback) {
      passOn();
      inner.flush(callback);
    },
    flushSync() {
      passOn();
      inner.flushSync();
    },
  };
}
