import { describe, expect, it } from "vitest";
import { mergeStreams } from "../../src/domain/audio/merge-streams.ts";

/** An async iterator fed by hand: `push` a value, `end` with a return value, `fail`; counts its `next()` calls. */
function manual<T, R>() {
  const waiting: Array<{ resolve: (r: IteratorResult<T, R>) => void; reject: (e: unknown) => void }> = [];
  const queued: Array<IteratorResult<T, R> | { error: unknown }> = [];
  let asked = 0;
  const deliver = (item: IteratorResult<T, R> | { error: unknown }) => {
    const w = waiting.shift();
    if (!w) return void queued.push(item);
    if ("error" in item) w.reject(item.error);
    else w.resolve(item);
  };
  const iterator: AsyncIterator<T, R> = {
    next() {
      asked++;
      const item = queued.shift();
      if (item) return "error" in item ? Promise.reject(item.error) : Promise.resolve(item);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
  };
  return {
    iterator,
    push: (value: T) => deliver({ done: false, value }),
    end: (value: R) => deliver({ done: true, value }),
    fail: (error: unknown) => deliver({ error }),
    asked: () => asked,
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("mergeStreams (Converse's interleaving of text and audio)", () => {
  it("hands over items in the order they arrive, each source's order kept, with each source's end and return value", async () => {
    const text = manual<string, number>();
    const audio = manual<string, void>();
    const seen: string[] = [];
    const done = (async () => {
      for await (const step of mergeStreams({ text: text.iterator, audio: audio.iterator })) {
        seen.push(step.result.done ? `${step.source} end ${String(step.result.value)}` : `${step.source} ${step.result.value}`);
      }
    })();
    text.push("a");
    await tick();
    audio.push("1");
    await tick();
    text.push("b");
    await tick();
    text.end(42);
    await tick();
    audio.push("2");
    await tick();
    audio.end(undefined);
    await done;
    expect(seen).toEqual(["text a", "audio 1", "text b", "text end 42", "audio 2", "audio end undefined"]);
  });

  it("asks a source for its next item only once the consumer has taken the last one", async () => {
    const audio = manual<number, void>();
    const merged = mergeStreams({ audio: audio.iterator });
    for (let i = 0; i < 5; i++) audio.push(i);
    const first = await merged.next();
    expect(first.value).toMatchObject({ source: "audio", result: { value: 0 } });
    await tick();
    expect(audio.asked()).toBe(1); // the four other items wait in the source, not in the merge
    await merged.next();
    expect(audio.asked()).toBe(2);
  });

  it("fails with the first source's failure", async () => {
    const text = manual<string, void>();
    const audio = manual<string, void>();
    const merged = mergeStreams({ text: text.iterator, audio: audio.iterator });
    const next = merged.next();
    audio.fail(new Error("engine stopped"));
    await expect(next).rejects.toThrow("engine stopped");
  });
});
