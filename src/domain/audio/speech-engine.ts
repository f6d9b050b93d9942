/**
 * The contract the audio domain needs from a text-to-speech engine. eSpeak NG in child processes
 * (src/tts) implements it today; a neural engine (Piper) or a cloud TTS can implement it tomorrow
 * without the domain or the handlers changing.
 */

/** The encodings a stream can be delivered in (the proto's AudioFormat, minus "unspecified"). */
export type AudioEncoding = "pcm_s16le" | "wav" | "mulaw" | "mp3" | "ogg_opus";

export type VoiceGender = "unspecified" | "female" | "male" | "neutral";

/** One voice of the engine, as ListVoices reports it. */
export interface EngineVoice {
  /** Stable id, as used in SynthesizeRequest.voice. */
  readonly id: string;
  readonly name: string;
  /** The voice's language as a BCP 47 tag (canonical case, e.g. "en-GB"). */
  readonly language: string;
  /** Every language the voice speaks (BCP 47), its own first; ListVoices filters on these. */
  readonly languages: readonly string[];
  readonly gender: VoiceGender;
  readonly style: string;
  readonly sampleRatesHz: readonly number[];
  readonly defaultSampleRateHz: number;
  readonly isDefault: boolean;
}

/** How one audio stream is spoken and encoded; fixed for the stream's life. */
export interface SessionSpec {
  readonly voiceId: string;
  /** 1.0 is normal speed; within the engine's `speakingRate` bounds. */
  readonly speakingRate: number;
  readonly encoding: AudioEncoding;
  readonly sampleRateHz: number;
}

/** A piece of encoded audio and how many samples (at the stream's rate) it was encoded from. */
export interface AudioPiece {
  readonly data: Uint8Array;
  readonly samples: number;
}

/**
 * One audio stream inside the engine: its encoder state lives here, so MP3 frames and Ogg pages run on
 * across sentences as one file. Engine failures reject with DomainError("unavailable").
 */
export interface SpeechSession {
  /**
   * Speaks one sentence, yielding encoded audio as the engine produces it (the first piece comes long
   * before the sentence is done). Aborting `signal` stops the engine at once; the iteration then ends.
   */
  speak(sentence: string, signal: AbortSignal): AsyncIterable<AudioPiece>;
  /** Ends the stream: the encoder's last bytes (an MP3 tail, the final Ogg page). */
  finish(signal: AbortSignal): AsyncIterable<AudioPiece>;
  /** Releases the session's engine resources; safe to call at any time, more than once. */
  close(): void;
}

export type EngineHealth = { readonly state: "serving" | "starting" | "idle" } | { readonly state: "down"; readonly detail: string };

export interface SpeechEngine {
  /** A human-readable name with version, e.g. "eSpeak NG 1.52 (WebAssembly)". */
  readonly name: string;
  /** The encodings the engine can produce; a request for any other answers UNIMPLEMENTED. */
  readonly encodings: ReadonlySet<AudioEncoding>;
  /** The sample rates each encoding can be delivered at. */
  sampleRatesFor(encoding: AudioEncoding): readonly number[];
  /** Speaking-rate bounds the engine honours (inclusive). */
  readonly speakingRate: { readonly min: number; readonly max: number };
  /** The engine's real voices (starts the engine if needed). Rejects with DomainError("unavailable"). */
  voices(): Promise<readonly EngineVoice[]>;
  /** Opens a stream inside the engine. Rejects with DomainError("unavailable"). */
  open(spec: SessionSpec): Promise<SpeechSession>;
  health(): EngineHealth;
}
