/**
 * A one-consumer queue that turns pushed values into an async iterable: the bridge from message events
 * (an engine process's audio) to the `for await` loops of the domain. It holds what the producer pushed
 * and the consumer has not yet taken; producers here are bounded (one sentence at a time).
 */
export interface AsyncQueue<T> extends AsyncIterable<T> {
  push(value: T): void;
  end(): void;
  fail(error: unknown): void;
}

export function createAsyncQueue<T>(onReturn?: () => void): AsyncQueue<T> {
  const values: T[] = [];
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  return {
    push(value) {
      if (ended || failure) return;
      values.push(value);
      notify();
    },
    end() {
      ended = true;
      notify();
    },
    fail(error) {
      if (ended || failure) return;
      failure = { error };
      notify();
    },
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          if (values.length > 0) {
            yield values.shift()!;
            continue;
          }
          if (failure) throw failure.error;
          if (ended) return;
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        onReturn?.();
      }
    },
  };
}
