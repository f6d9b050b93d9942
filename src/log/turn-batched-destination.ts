import type { DestinationStream } from "pino";

/** A destination that can be flushed (pino's sonic-boom destinations can). */
export interface FlushableDestination extends DestinationStream {
  flush(callback?: (error?: Error | null) => void): void;
  flushSync(): void;
}

/**
 * A log destination that gathers the lines written during one turn of the event loop and hands them to
 * `inner` as one string when the turn ends (`setImmediate`), in the order they were written.
 *
 * Why: pino's sonic-boom does per-write work that grows with what it holds — `Buffer.byteLength` of its
 * whole pending buffer (a string built by `+=`, flattened again on every call) — and at one access line
 * per RPC that cost ~10 µs of each small call on a slow machine. Joined per turn, that work is done once
 * for all the calls that ended in the turn. Every logger writing here (pino's lines and the direct
 * access line share the one destination) is batched together, so their order is kept.
 *
 * Nothing is lost on the way out: `flush` and `flushSync` first pass on what is gathered, and the
 * process's `exit` (after `logger.fatal` and `process.exit`, say) passes it on and flushes `inner`
 * synchronously before sonic-boom's own exit handler runs.
 */
export function createTurnBatchedDestination(inner: FlushableDestination): FlushableDestination {
  let pending: string[] = [];
  let scheduled = false;

  const passOn = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.length === 1 ? pending[0]! : pending.join("");
    pending = [];
    inner.write(text);
  };

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
      if (!scheduled) {
        scheduled = true;
        setImmediate(passOn);
      }
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
