import { createRequire } from "node:module";
import { float32ToInt16, int16ToFloat32 } from "./pcm.ts";
import { concatArrays } from "./stream-encoder.ts";

interface Src {
  full(data: Float32Array): Float32Array;
  outputSampleRate: number;
}
type LibSampleRate = {
  create(channels: number, inRate: number, outRate: number, options: { converterType: number }): Promise<Src>;
  ConverterType: { SRC_SINC_FASTEST: number };
};
// CommonJS build of libsamplerate's WebAssembly port (BSD-2-Clause, MIT wrapper).
const libsamplerate = createRequire(import.meta.url)("@alexanderolsen/libsamplerate-js") as LibSampleRate;

/** Resamples one utterance at a time: begin(), process() as audio arrives, end() for the filter's tail. */
export interface Resampler {
  /** Starts a new utterance at `outRate` with a clean filter state. */
  begin(outRate: number): void;
  process(samples: Int16Array): Int16Array;
  /** The rest of the utterance: pushes the filter's delay out with silence and trims to the exact length. */
  end(): Int16Array;
}

const FLUSH_BLOCK = 512;

/**
 * A band-limited sinc resampler (libsamplerate, SRC_SINC_FASTEST: 97 dB SNR, 80 % passband), never sample
 * dropping, so downsampling does not alias. Each utterance is resampled on its own: sentences start and
 * end in silence, so no filter state needs to carry across them, and one converter serves every stream
 * of the process.
 */
export async function createResampler(inRate: number): Promise<Resampler> {
  const src = await libsamplerate.create(1, inRate, inRate === 48000 ? 44100 : 48000, { converterType: libsamplerate.ConverterType.SRC_SINC_FASTEST });
  let outRate = inRate;
  let inCount = 0;
  let outCount = 0;
  const expected = () => Math.round((inCount * outRate) / inRate);
  return {
    begin(rate) {
      outRate = rate;
      inCount = 0;
      outCount = 0;
      // Setting the rate re-creates the converter: a fresh filter for each utterance.
      if (rate !== inRate) src.outputSampleRate = rate;
    },
    process(samples) {
      if (outRate === inRate) return samples;
      inCount += samples.length;
      const out = float32ToInt16(src.full(int16ToFloat32(samples)));
      outCount += out.length;
      return out;
    },
    end() {
      if (outRate === inRate) return new Int16Array(0);
      const parts: Int16Array[] = [];
      const silence = new Float32Array(FLUSH_BLOCK);
      for (let i = 0; i < 16 && outCount < expected(); i++) {
        const out = float32ToInt16(src.full(silence));
        const keep = out.subarray(0, Math.max(0, expected() - outCount));
        outCount += keep.length;
        parts.push(keep);
      }
      return concatArrays(parts, (n) => new Int16Array(n));
    },
  };
}
