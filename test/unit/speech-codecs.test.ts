import { OggOpusDecoder } from "ogg-opus-decoder";
import { describe, expect, it } from "vitest";
import { createAudioChunker } from "../../src/domain/audio/audio-chunker.ts";
import { cleanSpeechText, createSentenceCollector, MAX_PIECE_CHARACTERS, splitSentences } from "../../src/domain/audio/speech-text.ts";
import { createOggOpusEncoder } from "../../src/tts/audio/opus-encoder.ts";
import { oggCrc } from "../../src/tts/audio/ogg-pages.ts";
import { float32ToInt16, int16ToMulaw } from "../../src/tts/audio/pcm.ts";
import { createResampler } from "../../src/tts/audio/resampler.ts";
import { espeakSafeText, toBcp47 } from "../../src/tts/espeak/espeak-voices.ts";
import { python, toneLevel } from "../helpers/audio.ts";

const sine = (rate: number, frequency: number, seconds: number, amplitude = 0.5) => {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * frequency * i) / rate);
  return out;
};
const toFloat = (pcm: Int16Array) => Float32Array.from(pcm, (s) => s / 32768);

describe("the resampler (libsamplerate sinc) keeps what fits and removes what would alias", () => {
  it("downsampling 22050 → 8000 Hz: a 1 kHz tone passes, a 6 kHz tone (above the new Nyquist) leaves no 2 kHz alias", async () => {
    const resampler = await createResampler(22050);
    const run = (input: Float32Array) => {
      resampler.begin(8000);
      const parts = [resampler.process(float32ToInt16(input.subarray(0, 5000))), resampler.process(float32ToInt16(input.subarray(5000))), resampler.end()];
      const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
      let offset = 0;
      for (const p of parts) {
        out.set(p, offset);
        offset += p.length;
      }
      return out;
    };
    const pass = run(sine(22050, 1000, 1));
    expect(pass.length).toBe(8000); // exactly the input's duration at the new rate
    expect(toneLevel(toFloat(pass).subarray(400, 7600), 8000, 1000)).toBeGreaterThan(0.2);
    const stop = run(sine(22050, 6000, 1));
    // Sample dropping would fold 6 kHz to 8000 − 6000 = 2 kHz at full level; the sinc filter removes it.
    const alias = toneLevel(toFloat(stop).subarray(400, 7600), 8000, 2000);
    expect(alias).toBeLessThan(0.25 * 0.01); // more than 40 dB below the input
  });

  it("upsampling keeps the tone and the duration", async () => {
    const resampler = await createResampler(22050);
    resampler.begin(48000);
    const a = resampler.process(float32ToInt16(sine(22050, 440, 0.5)));
    const b = resampler.end();
    expect(a.length + b.length).toBe(24000);
    const out = new Int16Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    expect(toneLevel(toFloat(out).subarray(1000, 23000), 48000, 440)).toBeGreaterThan(0.2);
  });
});

describe("encoders", () => {
  it("mu-law agrees with Python's G.711 encoder sample for sample", async () => {
    const pcm = new Int16Array(65536);
    for (let i = 0; i < pcm.length; i++) pcm[i] = i - 32768;
    const ours = int16ToMulaw(pcm);
    const reference = await python(
      `
import audioop, json, sys
print(json.dumps({"ulaw": list(audioop.lin2ulaw(sys.stdin.buffer.read(), 2))}))`,
      Buffer.from(pcm.buffer),
    );
    expect(Array.from(ours)).toEqual(reference["ulaw"]);
  });

  it("Ogg pages carry the RFC 3533 CRC; Ogg Opus at 48 kHz decodes to the tone it was given", async () => {
    expect(oggCrc(new TextEncoder().encode("123456789"))).toBe(0x89a1897f); // the CRC-32/MPEG-2 check value
    const encoder = createOggOpusEncoder({ sampleRateHz: 48000, serial: 7 });
    const tone = float32ToInt16(sine(48000, 440, 1));
    const parts = [encoder.encode(tone.subarray(0, 12345)), encoder.encode(tone.subarray(12345)), encoder.finish()];
    const file = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of parts) {
      file.set(p, offset);
      offset += p.length;
    }
    const decoder = new OggOpusDecoder();
    await decoder.ready;
    const decoded = await decoder.decodeFile(file);
    decoder.free();
    expect(decoded.errors).toEqual([]);
    expect(decoded.samplesDecoded).toBe(48000);
    expect(toneLevel(decoded.channelData[0]!.subarray(2000, 46000), 48000, 440)).toBeGreaterThan(0.2);
  });
});

describe("speech text", () => {
  it("strips control characters, refuses SSML, counts characters not UTF-16 units", () => {
    expect(cleanSpeechText("a\u0001b\tc\nd\u0085e\u007f")).toBe("ab c de");
    expect(() => cleanSpeechText(" <speak>hi</speak>")).toThrow(/SSML/);
    expect(() => cleanSpeechText("\u0000\u0001")).toThrow(/empty/);
    expect(cleanSpeechText("😀".repeat(5000))).toHaveLength(10000);
    expect(() => cleanSpeechText("😀".repeat(5001))).toThrow(/5000/);
  });

  it("makes markup and phoneme brackets inert for eSpeak's SSML and phoneme modes", () => {
    expect(espeakSafeText("a<b>&c [[h@l]] d]]")).toBe("a&lt;b&gt;&amp;c [ [h@l] ] d] ]");
  });

  it("splits at sentence boundaries and cuts long sentences at clause or word boundaries", () => {
    expect(splitSentences("Hello there. How are you? Fine!", "en")).toEqual(["Hello there.", "How are you?", "Fine!"]);
    const long = splitSentences(`${"word ".repeat(60)}, and ${"more ".repeat(40)}.`, "en");
    expect(long.length).toBeGreaterThan(1);
    expect(long.every((s) => s.length <= MAX_PIECE_CHARACTERS)).toBe(true);
    expect(long.join(" ").replace(/\s+/g, " ")).toBe(`${"word ".repeat(60)}, and ${"more ".repeat(40)}.`.replace(/\s+/g, " ").trim());
  });

  it("collects sentences from fragments as soon as each is complete (how Converse feeds a stream)", () => {
    const collector = createSentenceCollector("en");
    expect(collector.add("Hel")).toEqual([]);
    expect(collector.add("lo there. How")).toEqual(["Hello there."]);
    expect(collector.add(" are you? I am")).toEqual(["How are you?"]);
    expect(collector.end()).toEqual(["I am"]);
  });

  it("gives every eSpeak language a valid, canonical BCP 47 tag", () => {
    expect(toBcp47("en-gb")).toBe("en-GB");
    expect(toBcp47("en-us-nyc")).toBe("en-US-x-nyc");
    expect(toBcp47("zh-yue")).toBe("yue");
    expect(toBcp47("piqd")).toBe("und-x-piqd");
    expect(toBcp47("chr-US-Qaaa-x-west")).toBe("chr-US-x-qaaa-west");
  });
});

describe("the chunker", () => {
  it("cuts exact sizes across pieces and times compressed chunks by the samples behind them", () => {
    const chunker = createAudioChunker({ encoding: "mp3", sampleRateHz: 1000, chunkBytes: 100 });
    const out = [...chunker.add({ data: new Uint8Array(150), samples: 1000 }), ...chunker.add({ data: new Uint8Array(150), samples: 3000 }), ...chunker.flush()];
    expect(out.map((c) => c.data.length)).toEqual([100, 100, 100]);
    expect(out.map((c) => c.offsetBytes)).toEqual([0, 100, 200]);
    // Byte 100 is 2/3 through the first piece (1 s of audio); byte 200 is 1/3 through the second (3 s).
    expect(out.map((c) => c.startMs)).toEqual([0, 666, 2000]);
    expect(chunker.totals()).toEqual({ bytes: 300, chunks: 3, durationMs: 4000, samples: 4000 });
  });
});
