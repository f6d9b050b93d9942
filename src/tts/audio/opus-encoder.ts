import { createRequire } from "node:module";
import { createOggPageWriter } from "./ogg-pages.ts";
import { concatBytes, type StreamEncoder } from "./stream-encoder.ts";

interface OpusEncoder {
  encode(frame: ArrayBufferView): Uint8Array;
  bitrate: number | "auto" | "max";
  signal: "auto" | "voice" | "music";
  complexity: number;
  readonly lookahead: number;
}
type OpusModule = { Encoder: new (options: { channels: 1 | 2; sample_rate: number; application: "voip" | "audio" }) => OpusEncoder };

// @evan/opus is CommonJS; its native build loads when the platform has one, else its WebAssembly build.
const opus = createRequire(import.meta.url)("@evan/opus") as OpusModule;

/** The sample rates libopus encodes at; a stream at another rate cannot be Ogg Opus. */
export const OPUS_SAMPLE_RATES: readonly number[] = [8000, 12000, 16000, 24000, 48000];
const FRAME_MS = 20;
const VENDOR = "portcullis (libopus)";

/** The nominal bit rate used for speech at a sample rate (VBR; chunk durations are estimated from it). */
export function opusBitrate(sampleRateHz: number): number {
  return sampleRateHz <= 12000 ? 16_000 : 32_000;
}

/**
 * Ogg Opus (RFC 7845): OpusHead and OpusTags pages first, then 20 ms Opus packets in pages whose granule
 * positions count the 48 kHz samples a decoder has produced (the encoder's pre-skip included). The last
 * page carries the end-of-stream flag and the exact end position, so a decoder trims the padding.
 */
export function createOggOpusEncoder(options: { sampleRateHz: number; serial: number }): StreamEncoder {
  const rate = options.sampleRateHz;
  if (!OPUS_SAMPLE_RATES.includes(rate)) throw new RangeError(`Opus cannot encode at ${rate} Hz`);
  const encoder = new opus.Encoder({ channels: 1, sample_rate: rate, application: "voip" });
  encoder.bitrate = opusBitrate(rate);
  encoder.signal = "voice";
  encoder.complexity = 5;
  const scale = 48000 / rate;
  const preSkip = Math.round(encoder.lookahead * scale);
  const frame = (rate * FRAME_MS) / 1000;
  const pages = createOggPageWriter(options.serial);
  const pending = new Int16Array(frame);
  let pendingLength = 0;
  let encodedSamples = 0; // input samples consumed into packets, at the stream's rate
  let totalSamples = 0; // input samples received
  let headersSent = false;
  const end = () => preSkip + Math.round(totalSamples * scale);

  const headers = (): Uint8Array[] => {
    const head = new Uint8Array(19);
    const view = new DataView(head.buffer);
    head.set(new TextEncoder().encode("OpusHead"));
    head[8] = 1; // version
    head[9] = 1; // channels
    view.setUint16(10, preSkip, true);
    view.setUint32(12, rate, true); // the input rate, for information
    view.setInt16(16, 0, true); // output gain
    head[18] = 0; // mapping family: mono/stereo
    const vendor = new TextEncoder().encode(VENDOR);
    const tags = new Uint8Array(8 + 4 + vendor.length + 4);
    const tagView = new DataView(tags.buffer);
    tags.set(new TextEncoder().encode("OpusTags"));
    tagView.setUint32(8, vendor.length, true);
    tags.set(vendor, 12);
    tagView.setUint32(12 + vendor.length, 0, true); // no user comments
    return [...pages.add(head, 0n), ...pages.flush(), ...pages.add(tags, 0n), ...pages.flush()];
  };

  const encodeFrame = (samples: Int16Array): Uint8Array[] => {
    const packet = encoder.encode(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength));
    encodedSamples += frame;
    // A granule position counts decoded samples at 48 kHz, pre-skip included, so it may not pass the
    // last real sample (pre-skip + input): a decoder trims the padding of the final frames with it.
    // Copy the packet: the encoder may reuse its output buffer.
    return pages.add(packet.slice(), BigInt(Math.min(Math.round(encodedSamples * scale), end())));
  };

  return {
    encode(samples) {
      const out: Uint8Array[] = headersSent ? [] : headers();
      headersSent = true;
      totalSamples += samples.length;
      let offset = 0;
      if (pendingLength > 0) {
        const take = Math.min(frame - pendingLength, samples.length);
        pending.set(samples.subarray(0, take), pendingLength);
        pendingLength += take;
        offset = take;
        if (pendingLength === frame) {
          out.push(...encodeFrame(pending));
          pendingLength = 0;
        }
      }
      for (; offset + frame <= samples.length; offset += frame) out.push(...encodeFrame(samples.subarray(offset, offset + frame)));
      if (offset < samples.length) {
        pending.set(samples.subarray(offset), 0);
        pendingLength = samples.length - offset;
      }
      // A page per call: each sentence's audio leaves as soon as it is encoded.
      out.push(...pages.flush());
      return concatBytes(out);
    },
    finish() {
      const out: Uint8Array[] = headersSent ? [] : headers();
      headersSent = true;
      // The decoder's output lags the input by the pre-skip, so frames of silence follow until the last
      // real sample is decodable; the final granule trims them away. At least one frame goes out, so
      // the end-of-stream page ends a packet.
      do {
        pending.fill(0, pendingLength);
        pendingLength = 0;
        out.push(...encodeFrame(pending));
      } while (Math.round(encodedSamples * scale) < end());
      out.push(...pages.flush(true));
      return concatBytes(out);
    },
    release() {},
  };
}
