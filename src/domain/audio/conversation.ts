import type { AnswerEnd, AnswerStream } from "../ai/ai-queries.ts";
import type { QueryInput } from "../ai/query-input.ts";
import { auditActorOf } from "../audit/audit-actor.ts";
import type { AuditOutcome, AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { AudioChunk } from "./audio-chunker.ts";
import type { AudioService } from "./audio-service.ts";
import { mergeStreams } from "./merge-streams.ts";
import { createSentenceCollector, removeControlCharacters } from "./speech-text.ts";
import type { SpeechStreamHeader, StreamTotals } from "./speech-stream.ts";
import type { SynthesisInput } from "./synthesis-options.ts";

/**
 * What Converse needs of the AI layer: a streamed answer with its budget, retries, accounting and audit
 * (the AI capability's `queries.open`). Declared here, where it is used.
 */
export interface AnswerOpener {
  open(ctx: RequestContext, input: QueryInput, signal: AbortSignal, options: { purpose?: string }): Promise<AnswerStream>;
}

/** A Converse request in the domain's terms: the query, and how to speak its answer. */
export interface ConverseInput {
  readonly query: Omit<QueryInput, "messages">;
  readonly speech: Omit<SynthesisInput, "text">;
}

/** The end of a conversation: the audio's totals, the whole answer, who gave it, why it stopped, what it cost. */
export interface ConversationEnd extends AnswerEnd {
  readonly audio: StreamTotals;
  readonly text: string;
  readonly provider: string;
  readonly model: string;
}

/** What Converse streams: the header, then text deltas and audio chunks interleaved, then the end. */
export type ConversationEvent =
  | { readonly kind: "header"; readonly header: SpeechStreamHeader }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "chunk"; readonly chunk: AudioChunk }
  | { readonly kind: "end"; readonly end: ConversationEnd };

export interface Conversations {
  /**
   * Converse: an AI answer streamed as text and speech at once. Every error up to the answer's first
   * delta — bad input of either kind, an unknown provider, model or voice, a spent budget, a provider
   * that fails before answering, too many open audio streams — comes before the first message; a later
   * failure (the provider's or the engine's) ends the stream in place of the end message. Cancelling
   * (the signal) stops the provider request and the engine at once.
   */
  converse(caller: RequestContext, input: ConverseInput, signal: AbortSignal): AsyncIterable<ConversationEvent>;
}

const METHOD = "/portcullis.v1.AudioStreamService/Converse";

/**
 * Speaks an AI answer while it is being written: each delta goes to the client as it arrives and into
 * a sentence collector; each completed sentence goes to a speech stream, whose chunks are interleaved
 * with the deltas. So the first sentence is heard before the model has finished the answer, and the
 * audio always lags the text it speaks. The text is never held back for the engine: sentences wait in
 * line for it (an answer is at most max_tokens long). A reader slower than both paces both: neither
 * the provider's stream nor the engine runs ahead of it by more than their own buffers.
 */
export function createConversations(deps: { answers: AnswerOpener; speech: Pick<AudioService, "openStream">; audit: AuditRecorder }): Conversations {
  return {
    async *converse(caller, input, signal) {
      // 1. Everything that can be refused is refused before the first message.
      if (input.query.prompt.trim() === "") throw new DomainError("invalid_argument", "prompt is empty");
      // One signal for both halves: the caller's cancel, or either half failing, stops the other.
      const local = new AbortController();
      const onAbort = () => local.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      let answer: AnswerStream;
      let opened: Awaited<ReturnType<AudioService["openStream"]>>;
      try {
        answer = await deps.answers.open(caller, { ...input.query, messages: [] }, local.signal, { purpose: "converse" });
        opened = await deps.speech.openStream(caller, input.speech, local.signal);
      } catch (error) {
        signal.removeEventListener("abort", onAbort);
        throw error;
      }
      const { stream, plan, release } = opened;
      const collector = createSentenceCollector(plan.voice.language);
      let text = "";
      let sentences = 0;
      let totals: StreamTotals = { bytes: 0, chunks: 0, durationMs: 0 };
      let outcome: AuditOutcome = "failure";
      let reason: string | undefined = "ended early";
      // Sentences go to the stream in order, each once the stream has taken the one before (at most one
      // waits inside it), so the loop forwarding deltas never waits for the engine.
      let spoken: Promise<void> = Promise.resolve();
      const speak = (fragment: string | undefined) => {
        // Line breaks end sentences, so they are removed only from the sentences the collector returns.
        for (const raw of fragment === undefined ? collector.end() : collector.add(fragment)) {
          const sentence = removeControlCharacters(raw).trim();
          if (sentence === "") continue;
          sentences += 1;
          spoken = spoken.then(() => stream.say(sentence));
        }
        if (fragment === undefined) spoken = spoken.then(() => stream.end());
      };
      const deltas = answer.deltas;
      try {
        // 2. The budget check and the provider's first delta, still before any message.
        const first = await deltas.next();
        yield { kind: "header", header: stream.header };
        // 3. Text and audio, each as it comes.
        let end: AnswerEnd | undefined;
        const sources = { text: startingWith(first, deltas), audio: stream.events()[Symbol.asyncIterator]() };
        for await (const step of mergeStreams(sources)) {
          if (step.source === "text") {
            if (step.result.done) {
              end = step.result.value;
              speak(undefined);
            } else {
              text += step.result.value;
              speak(step.result.value);
              yield { kind: "text", text: step.result.value };
            }
          } else if (!step.result.done) {
            const event = step.result.value;
            if (event.kind === "chunk") yield event;
            else totals = event.totals;
          }
        }
        if (end === undefined) throw new Error("the answer ended without its end");
        outcome = "success";
        reason = undefined;
        yield { kind: "end", end: { ...end, audio: totals, text, provider: answer.provider, model: answer.model } };
      } catch (error) {
        if (signal.aborted) {
          reason = "cancelled";
          outcome = "failure";
        } else {
          reason = error instanceof DomainError ? error.message : "internal error";
          outcome = error instanceof DomainError && error.code !== "unavailable" && error.code !== "deadline_exceeded" ? "failure" : "error";
        }
        throw error;
      } finally {
        // The provider request and the engine stop (if still running); the answer is counted and audited.
        local.abort(new Error("conversation ended"));
        signal.removeEventListener("abort", onAbort);
        stream.close();
        release();
        await deltas.return(undefined as never).catch(() => undefined);
        deps.audit.record({
          type: "audio.converse",
          outcome,
          actor: auditActorOf(caller.principal),
          ip: caller.client.ip,
          userAgent: caller.client.userAgent,
          requestId: caller.requestId,
          method: METHOD,
          ...(reason ? { reason } : {}),
          metadata: {
            provider: answer.provider,
            model: answer.model,
            voice: stream.header.voiceId,
            format: stream.header.encoding,
            sample_rate_hz: stream.header.sampleRateHz,
            characters: [...text].length,
            sentences,
            bytes: totals.bytes,
            chunks: totals.chunks,
            duration_ms: totals.durationMs,
          },
        });
      }
    },
  };
}

/** The deltas again, with the one already read in front. */
async function* startingWith(first: IteratorResult<string, AnswerEnd>, rest: AsyncGenerator<string, AnswerEnd>): AsyncGenerator<string, AnswerEnd> {
  if (first.done) return first.value;
  yield first.value;
  return yield* rest;
}
