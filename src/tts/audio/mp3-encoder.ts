import { createMp3Encoder } from "wasm-media-encoders";
import { int16ToFloat32 } from "./pcm.ts";
import type { StreamEncoder } from "./stream-encoder.ts";

type WasmMp3Encoder = Awaited<ReturnType<typeof createMp3Encoder>>;
type Mp3Bitrate = 32 | 64 | 96;

/** The sample rates MPEG-1, -2 and -2.5 Layer III define; a stream at another rate cannot be MP3. */
export const MP3_SAMPLE_RATES: readonly number[] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/** Constant bit rate for mono speech, in kbit/s: enough for the engine's bandwidth at each MPEG version. */
export function mp3BitrateKbps(sampleRateHz: number): Mp3Bitrate {
  return sampleRateHz <= 12000 ? 32 : sampleRateHz <= 24000 ? 64 : 96;
}

/**
 * Reusable LAME instances. Each WebAssembly instance holds a few megabytes, so a finished stream hands
 * its instance back instead of leaving it to the garbage collector, and a burst of MP3 streams costs
 * at most one instance per stream open at once.
 */
export function createMp3EncoderPool() {
  const idle: WasmMp3Encoder[] = [];
  return {
    /** Creates an instance when none is idle (an asynchronous WebAssembly instantiation). */
    async prepare(): Promise<void> {
      if (idle.length === 0) idle.push(await createMp3Encoder());
    },
    /** An encoder for one stream; call prepare() first. */
    open(sampleRateHz: number): StreamEncoder {
      if (!MP3_SAMPLE_RATES.includes(sampleRateHz)) throw new RangeError(`MP3 cannot encode at ${sampleRateHz} Hz`);
      const lame = idle.pop();
      if (!lame) throw new Error("no MP3 encoder prepared");
      lame.configure({ channels: 1, sampleRate: sampleRateHz, bitrate: mp3BitrateKbps(sampleRateHz) });
      let done = false;
      const giveBack = () => {
        if (done) return;
        done = true;
        idle.push(lame);
      };
      return {
        // The encoder's output buffer is reused by its next call: copy it out.
        encode: (samples) => lame.encode([int16ToFloat32(samples)]).slice(),
        finish() {
          const tail = lame.finalize().slice();
          giveBack();
          return tail;
        },
        release() {
          if (done) return;
          lame.finalize(); // resets the instance for its next configure()
          giveBack();
        },
      };
    },
  };
}
