import { createAudioChunker, type AudioChunk } from "./audio-chunker.ts";
import { contentTypeOf } from "./audio-formats.ts";
import type { SpeechEngine, SpeechSession } from "./speech-engine.ts";
import type { StreamPlan } from "./synthesis-options.ts";

/** The first message of every audio stream. */
export interface SpeechStreamHeader {
  readonly encoding: StreamPlan["encoding"];
  readonly sampleRateHz: number;
  readonly channels: 1;
  readonly voiceId: string;
  readonly contentType: string;
  readonly chunkBytes: number;
}

export interface StreamTotals {
  readonly bytes: number;
  readonly chunks: number;
  readonly durationMs: number;
}

export type SpeechEvent = { readonly kind: "chunk"; readonly chunk: AudioChunk } | { readonly kind: "end"; readonly totals: StreamTotals };

/**
 * One audio stream, fed sentence by sentence: the reusable step behind Synthesize (sentences of a
 * text) and Converse (sentences of an AI answer as they are written). Audio leaves as chunks while
 * later sentences are still being spoken.
 *
 * Backpressure: the engine starts a sentence only while fewer than `bufferBytes` of chunks wait for
 * the reader, so a slow reader pauses synthesis, and a stream holds at most that plus one sentence's
 * audio. Aborting the signal (or leaving `events()` early) stops the engine at once.
 */
export interface SpeechStream {
  readonly header: SpeechStreamHeader;
  /** Queues a sentence; resolves when the stream has taken it (at most one sentence waits). */
  say(sentence: string): Promise<void>;
  /** No more sentences: the stream ends after the queued ones, with the encoder's tail and the totals. */
  end(): void;
  /** The chunks, then one end event. Throws the engine's failure (DomainError "unavailable"). */
  events(): AsyncIterable<SpeechEvent>;
  /** Stops the stream now (the engine stops; events() ends); safe to call more than once. */
  close(): void;
  /** Bytes produced and not yet read, and everything produced so far (for the stream registry). */
  stats(): { bufferedBytes: number; producedBytes: number; sentences: number };
}

export const STREAM_BUFFER_BYTES = 128 * 1024;

export async function openSpeechStream(engine: SpeechEngine, plan: StreamPlan, signal: AbortSignal, options: { bufferBytes?: number } = {}): Promise<SpeechStream> {
  const limit = options.bufferBytes ?? STREAM_BUFFER_BYTES;
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  let session: SpeechSession;
  try {
    session = await engine.open({ voiceId: plan.voice.id, speakingRate: plan.speakingRate, encoding: plan.encoding, sampleRateHz: plan.sampleRateHz });
  } catch (error) {
    signal.removeEventListener("abort", onAbort);
    throw error;
  }
  const chunker = createAudioChunker({ encoding: plan.encoding, sampleRateHz: plan.sampleRateHz, chunkBytes: plan.chunkBytes });

  const sentences: string[] = [];
  let ended = false;
  let taken: (() => void)[] = [];
  const output: SpeechEvent[] = [];
  let bufferedBytes = 0;
  let producedBytes = 0;
  let spoken = 0;
  let failure: { error: unknown } | undefined;
  let finished = false;
  let wakeProducer: (() => void) | undefined;
  let wakeConsumer: (() => void) | undefined;
  const poke = (which: "producer" | "consumer") => {
    const wake = which === "producer" ? wakeProducer : wakeConsumer;
    if (which === "producer") wakeProducer = undefined;
    else wakeConsumer = undefined;
    wake?.();
  };
  const sleep = (which: "producer" | "consumer") =>
    new Promise<void>((resolve) => {
      if (which === "producer") wakeProducer = resolve;
      else wakeConsumer = resolve;
    });
  stop.signal.addEventListener("abort", () => {
    poke("producer");
    poke("consumer");
  });

  const emit = (chunks: AudioChunk[]) => {
    for (const chunk of chunks) {
      output.push({ kind: "chunk", chunk });
      bufferedBytes += chunk.data.length;
      producedBytes += chunk.data.length;
    }
    if (chunks.length > 0) poke("consumer");
  };

  const produce = async () => {
    for (;;) {
      while (sentences.length === 0 && !ended && !stop.signal.aborted) await sleep("producer");
      if (stop.signal.aborted) return;
      const sentence = sentences.shift();
      taken.shift()?.();
      if (sentence === undefined) break;
      // Backpressure: wait for the reader before starting another sentence.
      while (bufferedBytes >= limit && !stop.signal.aborted) await sleep("producer");
      if (stop.signal.aborted) return;
      for await (const piece of session.speak(sentence, stop.signal)) emit(chunker.add(piece));
      spoken += 1;
    }
    for await (const piece of session.finish(stop.signal)) emit(chunker.add(piece));
    if (stop.signal.aborted) return;
    emit(chunker.flush());
    const totals = chunker.totals();
    output.push({ kind: "end", totals: { bytes: totals.bytes, chunks: totals.chunks, durationMs: totals.durationMs } });
    finished = true;
    poke("consumer");
  };
  const producer = produce().then(
    () => undefined,
    (error: unknown) => {
      failure = { error };
      poke("consumer");
    },
  );
  void producer.finally(() => {
    session.close();
    signal.removeEventListener("abort", onAbort);
    for (const release of taken) release();
    taken = [];
  });

  return {
    header: {
      encoding: plan.encoding,
      sampleRateHz: plan.sampleRateHz,
      channels: 1,
      voiceId: plan.voice.id,
      contentType: contentTypeOf(plan.encoding, plan.sampleRateHz),
      chunkBytes: plan.chunkBytes,
    },
    say(sentence) {
      if (ended || stop.signal.aborted) return Promise.resolve();
      sentences.push(sentence);
      poke("producer");
      if (sentences.length <= 1) return Promise.resolve();
      return new Promise<void>((resolve) => taken.push(resolve));
    },
    end() {
      ended = true;
      poke("producer");
    },
    async *events() {
      try {
        for (;;) {
          const next = output.shift();
          if (next) {
            if (next.kind === "chunk") {
              bufferedBytes -= next.chunk.data.length;
              poke("producer");
            }
            yield next;
            if (next.kind === "end") return;
            continue;
          }
          if (failure) throw failure.error;
          if (finished || stop.signal.aborted) return;
          await sleep("consumer");
        }
      } finally {
        // The reader is gone (done, failed or cancelled): stop speaking at once.
        stop.abort(new Error("audio stream closed"));
      }
    },
    close: () => stop.abort(new Error("audio stream closed")),
    stats: () => ({ bufferedBytes, producedBytes, sentences: spoken }),
  };
}
