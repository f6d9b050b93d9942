import { int16ToLittleEndian, int16ToMulaw } from "./pcm.ts";
import type { StreamEncoder } from "./stream-encoder.ts";
import { streamingWavHeader } from "./wav-header.ts";

/** Raw PCM s16le, or WAV (the same samples after a streaming RIFF header in the first bytes). */
export function createPcmEncoder(options: { sampleRateHz: number; wavHeader: boolean }): StreamEncoder {
  let header: Uint8Array | undefined = options.wavHeader ? streamingWavHeader(options.sampleRateHz, 1) : undefined;
  const takeHeader = () => {
    const h = header;
    header = undefined;
    return h;
  };
  return {
    encode(samples) {
      const h = takeHeader();
      const body = int16ToLittleEndian(samples);
      if (!h) return body;
      const out = new Uint8Array(h.length + body.length);
      out.set(h);
      out.set(body, h.length);
      return out;
    },
    finish: () => takeHeader() ?? new Uint8Array(0),
    release() {},
  };
}

/** G.711 mu-law, one byte per sample, no header. */
export function createMulawEncoder(): StreamEncoder {
  return {
    encode: (samples) => int16ToMulaw(samples),
    finish: () => new Uint8Array(0),
    release() {},
  };
}
