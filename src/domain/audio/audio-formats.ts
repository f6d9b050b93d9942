import type { AudioEncoding } from "./speech-engine.ts";

/** What a client needs to know about an encoding, and what the server needs to cut and time it. */
export interface EncodingFacts {
  readonly contentType: string;
  /** Bytes per sample for uncompressed encodings; undefined for compressed ones. */
  readonly bytesPerSample: number | undefined;
  /** Bytes before the first sample (the WAV header). */
  readonly headerBytes: number;
  /** Nominal bytes per second of audio at a sample rate (estimates for compressed encodings). */
  bytesPerSecond(sampleRateHz: number): number;
}

export const ENCODINGS: Readonly<Record<AudioEncoding, EncodingFacts>> = {
  pcm_s16le: { contentType: "audio/L16", bytesPerSample: 2, headerBytes: 0, bytesPerSecond: (rate) => rate * 2 },
  wav: { contentType: "audio/wav", bytesPerSample: 2, headerBytes: 44, bytesPerSecond: (rate) => rate * 2 },
  mulaw: { contentType: "audio/basic", bytesPerSample: 1, headerBytes: 0, bytesPerSecond: (rate) => rate },
  // The engine's constant MP3 bit rates (32, 64, 96 kbit/s by MPEG version) and Opus's nominal VBR rates.
  mp3: { contentType: "audio/mpeg", bytesPerSample: undefined, headerBytes: 0, bytesPerSecond: (rate) => (rate <= 12000 ? 4000 : rate <= 24000 ? 8000 : 12000) },
  ogg_opus: { contentType: "audio/ogg; codecs=opus", bytesPerSample: undefined, headerBytes: 0, bytesPerSecond: (rate) => (rate <= 12000 ? 2000 : 4000) },
};

/** audio/L16 names its rate and channels (RFC 2586); the other types carry them in the data. */
export function contentTypeOf(encoding: AudioEncoding, sampleRateHz: number): string {
  return encoding === "pcm_s16le" ? `audio/L16; rate=${sampleRateHz}; channels=1` : ENCODINGS[encoding].contentType;
}
