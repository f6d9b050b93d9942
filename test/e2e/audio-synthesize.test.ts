import { Code } from "@connectrpc/connect";
import { MPEGDecoder } from "mpg123-decoder";
import { OggOpusDecoder } from "ogg-opus-decoder";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPortcullisTransport } from "../../clients/connect-node.ts";
import { createGrpcJsClient } from "../../clients/grpc-js.ts";
import { AudioFormat, AudioStreamService, VoiceGender } from "../../gen/portcullis/v1/audio_stream_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SynthesizeRequestSchema } from "../../gen/portcullis/v1/audio_stream_pb.js";
import { createClient } from "@connectrpc/connect";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";
import { codeOf, python, PY_ULAW, PY_WAVE, receive, rms } from "../helpers/audio.ts";

const SENTENCES = "The quick brown fox jumps over the lazy dog. Speech leaves the gateway sentence by sentence! Does it arrive in order?";
const CHARACTERS = SENTENCES.length;

/** Synthesize through real clients, the real engine processes and the real identity layer. */
describe("AudioStreamService.Synthesize and ListVoices", () => {
  let gw: IdentityServer;
  let token = "";
  const audio = (protocol: "grpc" | "connect" | "grpc-web" = "grpc") => gw.client(AudioStreamService, { token, protocol });
  const synth = (req: MessageInitShape<typeof SynthesizeRequestSchema>, protocol?: "grpc" | "connect" | "grpc-web") => receive(audio(protocol).synthesize(req));

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("speaker", "user");
    token = (await gw.client(AuthService).login({ username: "speaker", password: testPassword("speaker") })).accessToken;
  });
  afterAll(async () => {
    await gw.close();
  });

  it("streams WAV that Python's wave module reads: header as asked, duration plausible for the text", async () => {
    const s = await synth({ text: SENTENCES, format: AudioFormat.WAV, sampleRateHz: 16000 });
    expect(s.order[0]).toBe("header");
    expect(s.order.at(-1)).toBe("end");
    expect(s.order.slice(1, -1).every((c) => c === "chunk")).toBe(true);
    expect(s.header).toMatchObject({ format: AudioFormat.WAV, sampleRateHz: 16000, channels: 1, contentType: "audio/wav", chunkSizeBytes: 4096, voice: "gmw/en" });
    expect(s.audio.subarray(0, 4).toString("latin1")).toBe("RIFF");
    const wav = await python(PY_WAVE, s.audio);
    expect(wav).toMatchObject({ channels: 1, sampwidth: 2, rate: 16000, comptype: "NONE" });
    const seconds = (wav["frames"] as number) / 16000;
    expect(seconds).toBeGreaterThan(0.04 * CHARACTERS);
    expect(seconds).toBeLessThan(0.2 * CHARACTERS);
    expect(Number(s.end.totalBytes)).toBe(s.audio.length);
    expect(s.end.totalChunks).toBe(s.chunks.length);
    expect(Math.abs(Number(s.end.duration!.seconds) + s.end.duration!.nanos / 1e9 - seconds)).toBeLessThan(0.01);
    // The estimate in the header is in the right range too.
    const estimate = Number(s.header.estimatedDuration!.seconds);
    expect(estimate).toBeGreaterThan(seconds / 3);
    expect(estimate).toBeLessThan(seconds * 3);
  });

  it("PCM: byte count = samples × channels × 2; chunks numbered, sized and timed as asked", async () => {
    const s = await synth({ text: SENTENCES, chunking: { case: "chunkSizeBytes", value: 1000 } });
    expect(s.header).toMatchObject({ format: AudioFormat.PCM_S16LE, sampleRateHz: 22050, chunkSizeBytes: 1000, contentType: "audio/L16; rate=22050; channels=1" });
    const samples = Number(s.end.duration!.seconds) * 22050 + Math.round((s.end.duration!.nanos / 1e9) * 22050);
    expect(Math.abs(s.audio.length - samples * 1 * 2)).toBeLessThanOrEqual(2 * 22); // duration is rounded to the millisecond
    expect(s.audio.length % 2).toBe(0);
    s.chunks.forEach((chunk, i) => {
      expect(chunk.sequence).toBe(i);
      expect(Number(chunk.offsetBytes)).toBe(i * 1000);
      expect(Number(chunk.startMs)).toBe(Math.floor((i * 1000) / 2 / 22.05));
      if (i < s.chunks.length - 1) expect(chunk.data.length).toBe(1000);
      else expect(chunk.data.length).toBeLessThanOrEqual(1000);
    });
    expect(rms(new Int16Array(s.audio.buffer, s.audio.byteOffset, s.audio.length / 2))).toBeGreaterThan(300); // speech, not silence
  });

  it("chunk_duration_ms is converted to bytes: 20 ms of 8 kHz mu-law is 160 bytes", async () => {
    const s = await synth({ text: "One short sentence.", format: AudioFormat.MULAW, sampleRateHz: 8000, chunking: { case: "chunkDurationMs", value: 20 } });
    expect(s.header.chunkSizeBytes).toBe(160);
    expect(s.chunks.slice(0, -1).every((c) => c.data.length === 160)).toBe(true);
    expect(s.chunks.map((c) => Number(c.startMs)).slice(0, 4)).toEqual([0, 20, 40, 60]);
  });

  it("mu-law decodes with a real G.711 decoder (Python's audioop) to speech of the right length", async () => {
    const s = await synth({ text: SENTENCES, format: AudioFormat.MULAW, sampleRateHz: 8000 });
    expect(s.header).toMatchObject({ format: AudioFormat.MULAW, sampleRateHz: 8000, contentType: "audio/basic" });
    const decoded = await python(PY_ULAW, s.audio);
    expect(decoded["samples"]).toBe(s.audio.length);
    expect(decoded["rms"] as number).toBeGreaterThan(300);
    expect((decoded["samples"] as number) / 8000).toBeGreaterThan(0.04 * CHARACTERS);
  });

  it("MP3 decodes with mpg123 at the requested rate, as long as the speech", async () => {
    const s = await synth({ text: SENTENCES, format: AudioFormat.MP3, sampleRateHz: 24000 });
    expect(s.header).toMatchObject({ format: AudioFormat.MP3, sampleRateHz: 24000, contentType: "audio/mpeg" });
    const decoder = new MPEGDecoder();
    await decoder.ready;
    const decoded = decoder.decode(new Uint8Array(s.audio));
    decoder.free();
    expect(decoded.errors).toEqual([]);
    expect(decoded.sampleRate).toBe(24000);
    const seconds = Number(s.end.duration!.seconds) + s.end.duration!.nanos / 1e9;
    // LAME adds its encoder delay and pads the last frame: a few dozen milliseconds at most.
    expect(decoded.samplesDecoded / 24000).toBeGreaterThan(seconds);
    expect(decoded.samplesDecoded / 24000).toBeLessThan(seconds + 0.2);
    expect(rms(decoded.channelData[0]!)).toBeGreaterThan(0.01);
  });

  it("Ogg Opus decodes with libopus to exactly the speech's length (pre-skip and end trimming honoured)", async () => {
    const s = await synth({ text: SENTENCES, format: AudioFormat.OGG_OPUS, sampleRateHz: 16000 });
    expect(s.header).toMatchObject({ format: AudioFormat.OGG_OPUS, sampleRateHz: 16000, contentType: "audio/ogg; codecs=opus" });
    expect(s.audio.subarray(0, 4).toString("latin1")).toBe("OggS");
    const decoder = new OggOpusDecoder();
    await decoder.ready;
    const decoded = await decoder.decodeFile(new Uint8Array(s.audio));
    decoder.free();
    expect(decoded.errors).toEqual([]);
    const seconds = Number(s.end.duration!.seconds) + s.end.duration!.nanos / 1e9;
    expect(Math.abs(decoded.samplesDecoded / 48000 - seconds)).toBeLessThan(0.03);
    expect(rms(decoded.channelData[0]!)).toBeGreaterThan(0.01);
  });

  it("resamples to the requested rate: 8 kHz and 48 kHz WAV carry the same speech, in proportion", async () => {
    const low = await synth({ text: "Resampling keeps the duration.", format: AudioFormat.WAV, sampleRateHz: 8000 });
    const high = await synth({ text: "Resampling keeps the duration.", format: AudioFormat.WAV, sampleRateHz: 48000 });
    const lowWav = await python(PY_WAVE, low.audio);
    const highWav = await python(PY_WAVE, high.audio);
    expect(lowWav["rate"]).toBe(8000);
    expect(highWav["rate"]).toBe(48000);
    expect(Math.abs((lowWav["frames"] as number) * 6 - (highWav["frames"] as number))).toBeLessThan(48 * 5);
  });

  it("a Connect-protocol client (and gRPC-Web, and @grpc/grpc-js) consumes the same stream", async () => {
    const request = { text: "Every protocol hears the same words.", format: AudioFormat.PCM_S16LE, chunking: { case: "chunkSizeBytes" as const, value: 2048 } };
    const grpc = await synth(request, "grpc");
    const connect = await synth(request, "connect");
    const grpcWeb = await receive(createClient(AudioStreamService, createPortcullisTransport({ baseUrl: gw.baseUrl, protocol: "grpc-web", httpVersion: "1.1", token })).synthesize(request));
    const grpcJs = createGrpcJsClient(AudioStreamService, `127.0.0.1:${gw.port}`);
    let viaGrpcJs;
    try {
      viaGrpcJs = await receive(grpcJs.synthesize(request, { metadata: { authorization: `Bearer ${token}` } }));
    } finally {
      grpcJs.close();
    }
    // eSpeak adds a little random noise (breath, frication), so the bytes differ from run to run; the
    // stream's shape and the speech's length do not.
    for (const other of [connect, grpcWeb, viaGrpcJs]) {
      expect(other.header).toEqual(grpc.header);
      expect(other.order[0]).toBe("header");
      expect(other.order.at(-1)).toBe("end");
      expect(other.chunks.map((c) => c.sequence)).toEqual(other.chunks.map((_, i) => i));
      expect(Math.abs(other.audio.length - grpc.audio.length)).toBeLessThan(grpc.audio.length * 0.05);
      expect(Number(other.end.totalBytes)).toBe(other.audio.length);
    }
  });

  it("speaks faster and slower within bounds, and in another voice", async () => {
    const normal = await synth({ text: SENTENCES });
    const fast = await synth({ text: SENTENCES, speakingRate: 2 });
    const slow = await synth({ text: SENTENCES, speakingRate: 0.5 });
    expect(fast.audio.length).toBeLessThan(normal.audio.length * 0.75);
    expect(slow.audio.length).toBeGreaterThan(normal.audio.length * 1.4);
    const german = await synth({ text: "Guten Tag. Wie geht es Ihnen?", voice: "gmw/de" });
    expect(german.header.voice).toBe("gmw/de");
    expect(german.chunks.length).toBeGreaterThan(0);
  });

  it("treats markup and phoneme brackets as text: never SSML, never engine commands", async () => {
    // Escaped, "<" is spoken as a character; passed raw, eSpeak's SSML mode would drop the tag silently.
    const plain = await synth({ text: "one two three" });
    const tagged = await synth({ text: "one <break time='10s'/> two three" });
    const seconds = (s: { audio: Buffer }) => s.audio.length / 2 / 22050;
    expect(seconds(tagged)).toBeGreaterThan(seconds(plain));
    expect(seconds(tagged)).toBeLessThan(seconds(plain) + 9); // no ten-second break was obeyed
    // Control characters are stripped (Ctrl-A would open an eSpeak embedded command), so the speech is
    // that of the plain text.
    const controls = await synth({ text: "one\u0001 two\u0007\u001b three" });
    expect(Math.abs(seconds(controls) - seconds(plain))).toBeLessThan(seconds(plain) * 0.05);
    await expect(codeOf(() => synth({ text: "<speak>Hello</speak>" }))).resolves.toBe(Code.InvalidArgument);
    await expect(codeOf(() => synth({ text: '<?xml version="1.0"?><speak>Hi</speak>' }))).resolves.toBe(Code.InvalidArgument);
  });

  it("refuses bad input with the contract's codes and clear messages, before any audio", async () => {
    const cases: Array<[string, MessageInitShape<typeof SynthesizeRequestSchema>, Code]> = [
      ["empty text", { text: "" }, Code.InvalidArgument],
      ["only whitespace and controls", { text: " \u0000\u0001\n " }, Code.InvalidArgument],
      ["5,001 characters", { text: "a".repeat(5001) }, Code.InvalidArgument],
      ["an unknown voice", { text: "hi", voice: "gmw/klingon" }, Code.NotFound],
      ["sample rate 7,999", { text: "hi", sampleRateHz: 7999 }, Code.InvalidArgument],
      ["sample rate 10^6", { text: "hi", sampleRateHz: 1_000_000 }, Code.InvalidArgument],
      ["a negative sample rate", { text: "hi", sampleRateHz: -8000 }, Code.InvalidArgument],
      ["a rate Ogg Opus cannot carry", { text: "hi", format: AudioFormat.OGG_OPUS, sampleRateHz: 22050 }, Code.InvalidArgument],
      ["chunk size 0", { text: "hi", chunking: { case: "chunkSizeBytes", value: 0 } }, Code.InvalidArgument],
      ["chunk size 255", { text: "hi", chunking: { case: "chunkSizeBytes", value: 255 } }, Code.InvalidArgument],
      ["chunk size 65,537", { text: "hi", chunking: { case: "chunkSizeBytes", value: 65537 } }, Code.InvalidArgument],
      ["chunk duration 9 ms", { text: "hi", chunking: { case: "chunkDurationMs", value: 9 } }, Code.InvalidArgument],
      ["chunk duration 5,001 ms", { text: "hi", chunking: { case: "chunkDurationMs", value: 5001 } }, Code.InvalidArgument],
      ["speaking rate 0", { text: "hi", speakingRate: 0 }, Code.InvalidArgument],
      ["speaking rate 100", { text: "hi", speakingRate: 100 }, Code.InvalidArgument],
      ["speaking rate NaN", { text: "hi", speakingRate: Number.NaN }, Code.InvalidArgument],
      ["an unsupported format", { text: "hi", format: 42 as AudioFormat }, Code.Unimplemented],
    ];
    for (const [name, request, code] of cases) {
      let firstMessages = 0;
      const result = await codeOf(async () => {
        for await (const _ of audio().synthesize(request)) firstMessages++;
      });
      expect({ name, result, firstMessages }).toEqual({ name, result: code, firstMessages: 0 });
    }
    // Exactly 5,000 characters (counted as characters: an emoji is one) is accepted: audio starts.
    const stop = new AbortController();
    const text = `${"😀".repeat(10)} ${"word ".repeat(998)}`.slice(0, 5010);
    expect([...text].length).toBe(5000);
    expect(text.length).toBeGreaterThan(5000);
    const longest = audio().synthesize({ text }, { signal: stop.signal });
    const seen: string[] = [];
    for await (const message of longest) {
      seen.push(message.payload.case ?? "");
      if (seen.length === 2) break;
    }
    stop.abort();
    expect(seen).toEqual(["header", "chunk"]);
  });

  it("sample rate 0 means the voice's default rate (22050 Hz; the nearest Opus rate above it for Ogg Opus)", async () => {
    expect((await synth({ text: "hi", sampleRateHz: 0 })).header.sampleRateHz).toBe(22050);
    expect((await synth({ text: "hi", format: AudioFormat.OGG_OPUS })).header.sampleRateHz).toBe(24000);
  });

  it("ListVoices reports the engine's real voices with BCP 47 languages, filtered and ordered", async () => {
    const all = (await audio().listVoices({})).voices;
    expect(all.length).toBeGreaterThan(100);
    expect(all.filter((v) => v.isDefault).map((v) => v.id)).toEqual(["gmw/en"]);
    for (const v of all) {
      expect(Intl.getCanonicalLocales(v.language)).toEqual([v.language]); // valid and canonical BCP 47
      expect(v.sampleRatesHz).toContain(8000);
      expect(v.sampleRatesHz).toContain(48000);
      expect(v.defaultSampleRateHz).toBe(22050);
      expect(v.gender).toBe(VoiceGender.MALE);
    }
    const sorted = [...all].sort((a, b) => a.language.localeCompare(b.language) || a.name.localeCompare(b.name));
    expect(all.map((v) => v.id)).toEqual(sorted.map((v) => v.id));
    const english = (await audio("connect").listVoices({ language: "en" })).voices;
    expect(english.map((v) => v.id)).toEqual(expect.arrayContaining(["gmw/en", "gmw/en-US", "gmw/en-GB-scotland"]));
    expect(english.every((v) => v.language === "en" || v.language.startsWith("en-"))).toBe(true);
    const british = (await audio().listVoices({ language: "en-gb" })).voices.map((v) => v.id);
    expect(british).toContain("gmw/en");
    expect(british).not.toContain("gmw/en-US");
    expect((await audio().listVoices({ language: "tlh" })).voices).toEqual([]);
    await expect(codeOf(() => audio().listVoices({ language: "en_GB; DROP" }))).resolves.toBe(Code.InvalidArgument);
  });

  it("requires credentials and audio.stream", async () => {
    await expect(codeOf(() => gw.client(AudioStreamService).listVoices({}))).resolves.toBe(Code.Unauthenticated);
    await expect(codeOf(() => receive(gw.client(AudioStreamService).synthesize({ text: "hi" })))).resolves.toBe(Code.Unauthenticated);
    const keys = await import("../../gen/portcullis/v1/api_key_pb.js");
    const key = await gw.client(keys.ApiKeyService, { token }).createApiKey({ name: "no-audio", scopes: ["ai.status"] });
    await expect(codeOf(() => receive(gw.client(AudioStreamService, { token: key.secret }).synthesize({ text: "hi" })))).resolves.toBe(Code.PermissionDenied);
  });

  it("audits each stream once it ends — what was asked and delivered, never the text", async () => {
    const secretText = "The launch code is swordfish seven seven.";
    const s = await synth({ text: secretText, format: AudioFormat.MP3 });
    const events = await gw.auditEvents("audio.synthesize");
    const event = events.find((e) => (e["metadata"] as Record<string, unknown>)["bytes"] === Number(s.end.totalBytes));
    expect(event).toMatchObject({ outcome: "success", actor: { kind: "user" }, method: "/portcullis.v1.AudioStreamService/Synthesize" });
    expect(event!["metadata"]).toMatchObject({ voice: "gmw/en", format: "mp3", sample_rate_hz: 22050, characters: secretText.length, sentences: 1, chunks: s.chunks.length });
    expect(JSON.stringify(events)).not.toContain("swordfish");
  });
});
