/** One step of one source: which source, and what its `next()` gave (a value, or its end with the return value). */
export type MergedStep<S extends Record<string, AsyncIterator<unknown, unknown>>> = {
  [K in keyof S]: { readonly source: K; readonly result: S[K] extends AsyncIterator<infer T, infer R> ? IteratorResult<T, R> : never };
}[keyof S];

/**
 * Interleaves several async iterators in the order their items arrive, each source's own order kept,
 * and hands over each source's end too (with its return value). A source is asked for its next item
 * only once the consumer has taken the previous one, so nothing piles up here: a slow consumer paces
 * every source. The first source to fail fails the merge.
 *
 * The sources are not closed when the consumer stops early: their owner does that (a pending `next()`
 * cannot be withdrawn; the owner's abort signal is what ends it).
 */
export async function* mergeStreams<S extends Record<string, AsyncIterator<unknown, unknown>>>(sources: S): AsyncGenerator<MergedStep<S>, void> {
  const ready: Array<MergedStep<S>> = [];
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let waitingFor = 0;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const ask = (source: keyof S) => {
    waitingFor += 1;
    sources[source]!.next().then(
      (result) => {
        ready.push({ source, result } as MergedStep<S>);
        notify();
      },
      (error: unknown) => {
        failure ??= { error };
        notify();
      },
    );
  };
  for (const source of Object.keys(sources)) ask(source);
  while (waitingFor > 0) {
    if (failure) throw failure.error;
    const step = ready.shift();
    if (step === undefined) {
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    waitingFor -= 1;
    yield step;
    if (!step.result.done) ask(step.source);
  }
}
