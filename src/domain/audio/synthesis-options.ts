import { DomainError } from "../errors.ts";
import { ENCODINGS } from "./audio-formats.ts";
import type { AudioEncoding, EngineVoice, SpeechEngine } from "./speech-engine.ts";
import { cleanSpeechText } from "./speech-text.ts";

/** A Synthesize request in the domain's terms; undefined means "not set" (the documented default). */
export interface SynthesisInput {
  readonly text: string;
  readonly voice: string;
  /** undefined: PCM s16le; "unsupported": a format this server does not know. */
  readonly encoding: AudioEncoding | "unsupported" | undefined;
  /** 0: the voice's default rate. */
  readonly sampleRateHz: number;
  readonly chunking: { readonly bytes: number } | { readonly durationMs: number } | undefined;
  readonly speakingRate: number | undefined;
}

/** A validated request: everything a speech stream needs, nothing left to default. */
export interface StreamPlan {
  readonly voice: EngineVoice;
  readonly encoding: AudioEncoding;
  readonly sampleRateHz: number;
  readonly chunkBytes: number;
  readonly speakingRate: number;
}

export const DEFAULT_CHUNK_BYTES = 4096;
export const CHUNK_BYTES = { min: 256, max: 65536 } as const;
export const CHUNK_MS = { min: 10, max: 5000 } as const;

/**
 * Checks the delivery options of a stream in the order a client fixes them, each failure with the
 * contract's code: an unknown format UNIMPLEMENTED, an unknown voice NOT_FOUND, anything out of range
 * INVALID_ARGUMENT with the allowed range in the message.
 */
export async function planStream(engine: SpeechEngine, input: Omit<SynthesisInput, "text">): Promise<StreamPlan> {
  const encoding = input.encoding ?? "pcm_s16le";
  if (encoding === "unsupported" || !engine.encodings.has(encoding)) throw new DomainError("unimplemented", "the speech engine cannot produce this audio format");
  const speakingRate = input.speakingRate ?? 1;
  const { min, max } = engine.speakingRate;
  if (!Number.isFinite(speakingRate) || speakingRate < min || speakingRate > max) {
    throw new DomainError("invalid_argument", `speaking_rate must be from ${min} to ${max}`);
  }
  if (input.chunking && "bytes" in input.chunking) {
    const bytes = input.chunking.bytes;
    if (!Number.isInteger(bytes) || bytes < CHUNK_BYTES.min || bytes > CHUNK_BYTES.max) {
      throw new DomainError("invalid_argument", `chunk_size_bytes must be from ${CHUNK_BYTES.min} to ${CHUNK_BYTES.max}`);
    }
  } else if (input.chunking) {
    const ms = input.chunking.durationMs;
    if (!Number.isInteger(ms) || ms < CHUNK_MS.min || ms > CHUNK_MS.max) throw new DomainError("invalid_argument", `chunk_duration_ms must be from ${CHUNK_MS.min} to ${CHUNK_MS.max}`);
  }
  if (!Number.isInteger(input.sampleRateHz) || input.sampleRateHz < 0) throw new DomainError("invalid_argument", "sample_rate_hz must be 0 (the voice's default) or a supported rate");
  const voices = await engine.voices();
  const wanted = input.voice.trim();
  const voice = wanted === "" ? voices.find((v) => v.isDefault) : voices.find((v) => v.id.toLowerCase() === wanted.toLowerCase());
  if (!voice) throw new DomainError("not_found", `voice ${JSON.stringify(wanted.slice(0, 64))} not found (see ListVoices)`);
  const supported = voice.sampleRatesHz.filter((rate) => engine.sampleRatesFor(encoding).includes(rate));
  const sampleRateHz = input.sampleRateHz === 0 ? defaultRate(voice.defaultSampleRateHz, supported) : input.sampleRateHz;
  if (!supported.includes(sampleRateHz)) throw new DomainError("invalid_argument", `sample_rate_hz must be 0 or one of ${supported.join(", ")} for this voice and format`);
  return { voice, encoding, sampleRateHz, speakingRate, chunkBytes: chunkBytesOf(input.chunking, encoding, sampleRateHz) };
}

/** Validates the text of a request (see cleanSpeechText). */
export function planText(text: string): string {
  return cleanSpeechText(text);
}

/** The voice's own rate if the format allows it, else the nearest rate above it (or the highest). */
function defaultRate(voiceDefault: number, supported: readonly number[]): number {
  if (supported.includes(voiceDefault)) return voiceDefault;
  return supported.find((rate) => rate > voiceDefault) ?? supported.at(-1) ?? voiceDefault;
}

/** Bytes per chunk: as asked, or the asked duration in bytes (whole samples; estimated when compressed). */
function chunkBytesOf(chunking: SynthesisInput["chunking"], encoding: AudioEncoding, sampleRateHz: number): number {
  if (!chunking) return DEFAULT_CHUNK_BYTES;
  if ("bytes" in chunking) return chunking.bytes;
  const facts = ENCODINGS[encoding];
  if (facts.bytesPerSample !== undefined) return Math.max(1, Math.round((sampleRateHz * chunking.durationMs) / 1000)) * facts.bytesPerSample;
  return Math.max(1, Math.round((facts.bytesPerSecond(sampleRateHz) * chunking.durationMs) / 1000));
}
