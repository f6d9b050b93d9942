import type { AuditOutcome } from "../audit/audit-event.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { EngineHealth, EngineVoice, SpeechEngine } from "./speech-engine.ts";
import { openSpeechStream, type SpeechEvent, type SpeechStream, type SpeechStreamHeader } from "./speech-stream.ts";
import { splitSentences } from "./speech-text.ts";
import { planStream, planText, type StreamPlan, type SynthesisInput } from "./synthesis-options.ts";
import { createStreamSlots, type OpenStreamStats } from "./stream-slots.ts";
import { auditedCaller } from "../audit/audit-caller.ts";

/** What Synthesize streams: the header first, then the speech stream's chunks and end. */
export type SynthesisEvent = { readonly kind: "header"; readonly header: SpeechStreamHeader; readonly estimatedDurationMs: number } | SpeechEvent;

export interface AudioService {
  /** ListVoices: the engine's voices speaking `language` (a BCP 47 tag or prefix; empty for all), by language then name. */
  listVoices(caller: RequestContext, language: string): Promise<EngineVoice[]>;
  /**
   * Synthesize: validates everything before the first message (errors after it would leave a truncated
   * file), then streams. Audited once, when the stream ends, with what was asked and delivered — never
   * the text.
   */
  synthesize(caller: RequestContext, input: SynthesisInput, signal: AbortSignal): AsyncIterable<SynthesisEvent>;
  /**
   * Opens a speech stream for a caller, holding one of their stream slots until it ends: the step
   * Converse uses to speak an AI answer sentence by sentence (see SpeechStream).
   */
  openStream(caller: RequestContext, options: Omit<SynthesisInput, "text">, signal: AbortSignal): Promise<{ stream: SpeechStream; plan: StreamPlan; release: () => void }>;
  /** The TTS engine's name and health, for AiService.GetStatus's tts_engine. */
  engineStatus(): { readonly name: string; readonly health: EngineHealth };
  /** The streams open now: whose, and how much audio each holds for its reader and has produced. */
  openStreams(): OpenStreamStats[];
}

// A stand-in for the duration before synthesis: eSpeak speaks about 63 ms per character at rate 1.0.
const MS_PER_CHARACTER = 63;

export function createAudioService(deps: { engine: SpeechEngine; audit: AuditRecorder; maxStreamsPerPrincipal: number; method?: string }): AudioService {
  const slots = createStreamSlots(deps.maxStreamsPerPrincipal);
  const method = deps.method ?? "/portcullis.v1.AudioStreamService/Synthesize";

  const openStream: AudioService["openStream"] = async (caller, options, signal) => {
    const plan = await planStream(deps.engine, options);
    const slot = slots.acquire(caller.principal);
    try {
      const stream = await openSpeechStream(deps.engine, plan, signal);
      slot.track(() => stream.stats());
      return { stream, plan, release: slot.release };
    } catch (error) {
      slot.release();
      throw error;
    }
  };

  return {
    async listVoices(_caller, language) {
      const filter = language.trim();
      if (filter !== "" && !/^[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(filter)) throw new DomainError("invalid_argument", "language must be a BCP 47 tag or prefix, like en or en-GB");
      const wanted = filter.toLowerCase();
      const voices = (await deps.engine.voices()).filter((v) => wanted === "" || v.languages.some((l) => l.toLowerCase() === wanted || l.toLowerCase().startsWith(`${wanted}-`)));
      return voices.sort((a, b) => a.language.localeCompare(b.language) || a.name.localeCompare(b.name));
    },

    async *synthesize(caller, input, signal) {
      // 1. Everything that can be refused is refused before the first message.
      const text = planText(input.text);
      const { stream, plan, release } = await openStream(caller, input, signal);
      const sentences = splitSentences(text, plan.voice.language);
      // Until the end event arrives, the stream counts as cut short (cancelled, revoked, shut down).
      let outcome: AuditOutcome = "failure";
      let reason: string | undefined = "ended early";
      let totals = { bytes: 0, chunks: 0, durationMs: 0 };
      try {
        // 2. Feed the sentences as the stream takes them; read the audio as it comes.
        void (async () => {
          for (const sentence of sentences) await stream.say(sentence);
          stream.end();
        })();
        yield { kind: "header", header: stream.header, estimatedDurationMs: Math.round((text.length * MS_PER_CHARACTER) / plan.speakingRate) };
        for await (const event of stream.events()) {
          if (event.kind === "end") {
            totals = { ...event.totals };
            outcome = "success";
            reason = undefined;
          }
          yield event;
        }
      } catch (error) {
        reason = error instanceof DomainError ? error.message : "internal error";
        outcome = error instanceof DomainError && error.code !== "unavailable" ? "failure" : "error";
        throw error;
      } finally {
        stream.close();
        release();
        deps.audit.record({
          type: "audio.synthesize",
          outcome,
          ...auditedCaller(caller),
          method,
          ...(reason ? { reason } : {}),
          metadata: {
            voice: stream.header.voiceId,
            format: stream.header.encoding,
            sample_rate_hz: stream.header.sampleRateHz,
            characters: [...text].length,
            sentences: sentences.length,
            bytes: totals.bytes,
            chunks: totals.chunks,
            duration_ms: totals.durationMs,
          },
        });
      }
    },

    openStream,
    engineStatus: () => ({ name: deps.engine.name, health: deps.engine.health() }),
    openStreams: () => slots.snapshot(),
  };
}
