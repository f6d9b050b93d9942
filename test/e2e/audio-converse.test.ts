import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPortcullisTransport, type WireProtocol } from "../../clients/connect-node.ts";
import { AiService, FinishReason, HealthState } from "../../gen/portcullis/v1/ai_pb.js";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AudioFormat, AudioStreamService, type AudioChunk, type ConverseEnd, type ConverseRequest, type ConverseResponse, type StreamHeader } from "../../gen/portcullis/v1/audio_stream_pb.js";
import { ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { errorInfo, startAiGateway, startFakes, storeFakeCredentials, tokenFor } from "../helpers/ai-gateway.ts";
import { cpuTicks, eventually, PY_WAVE, python } from "../helpers/audio.ts";
import { testDatabaseName } from "../helpers/database.ts";
import type { FakeKind, FakeProvider } from "../helpers/fake-providers.ts";
import type { IdentityServer } from "../helpers/identity-server.ts";
import { captureSecrets } from "../helpers/secret-capture.ts";

type ConverseInit = Partial<Omit<ConverseRequest, "$typeName" | "$unknown">>;

/** A whole Converse stream as a client receives it. */
interface Conversation {
  header: StreamHeader;
  deltas: string[];
  chunks: AudioChunk[];
  end: ConverseEnd;
  /** Every message's payload case, in order. */
  order: string[];
  audio: Buffer;
}

function collect(messages: ConverseResponse[]): Conversation {
  const order = messages.map((m) => m.payload.case ?? "none");
  const header = messages.find((m) => m.payload.case === "header")?.payload.value as StreamHeader | undefined;
  const end = messages.find((m) => m.payload.case === "end")?.payload.value as ConverseEnd | undefined;
  if (!header || !end) throw new Error(`incomplete conversation: ${order.join(", ")}`);
  const deltas = messages.flatMap((m) => (m.payload.case === "textDelta" ? [m.payload.value] : []));
  const chunks = messages.flatMap((m) => (m.payload.case === "audioChunk" ? [m.payload.value] : []));
  return { header, deltas, chunks, end, order, audio: Buffer.concat(chunks.map((c) => c.data)) };
}

/** The answer's sentences: the first is complete (text after it has begun) when the fake holds the rest. */
const HELD_WORDS = ["The first sentence is here. The", " second", " sentence", " follows", " it."];

/**
 * Converse end to end: the real gateway, the real engine, the built-in local provider and a real HTTP
 * fake of an OpenAI-kind provider, over gRPC and Connect. Text and speech of one answer in one stream,
 * with Query's budgets, audit and errors and Synthesize's.
 */
describe("Converse: an AI answer as text and speech in one stream", () => {
  const dbName = testDatabaseName(import.meta.url);
  let gw: IdentityServer;
  let fakes: Record<FakeKind, FakeProvider>;
  let userToken = "";
  let ownerToken = "";
  const audio = (protocol: WireProtocol = "grpc", token = userToken) => gw.client(AudioStreamService, { token, protocol });
  const converse = async (request: ConverseInit, protocol: WireProtocol = "grpc", token = userToken) => {
    const messages: ConverseResponse[] = [];
    for await (const m of audio(protocol, token).converse(request)) messages.push(m);
    return collect(messages);
  };
  /** The code a Converse fails with, and the messages that came before the failure. */
  const failure = async (request: ConverseInit, protocol: WireProtocol = "grpc", token = userToken) => {
    const received: string[] = [];
    try {
      for await (const m of audio(protocol, token).converse(request)) received.push(m.payload.case ?? "none");
    } catch (error) {
      return { error: ConnectError.from(error), received };
    }
    throw new Error(`the conversation succeeded: ${received.join(", ")}`);
  };
  const engine = () => gw.gateway.audio.engine;
  const engineIdle = async (pid: number) => {
    const before = await cpuTicks(pid);
    await new Promise((resolve) => setTimeout(resolve, 250));
    return (await cpuTicks(pid)) === before;
  };

  beforeAll(async () => {
    fakes = await startFakes();
    // One engine process, so "the engine" is one pid; prompts up to Synthesize's 5,000 characters.
    gw = await startAiGateway(dbName, fakes, { PORTCULLIS_TTS_ENGINE_PROCESSES: "1", PORTCULLIS_AI_MAX_PROMPT_CHARS: "5000" });
    ownerToken = await tokenFor(gw, "orla", "owner");
    userToken = await tokenFor(gw, "ulrich", "user");
    await storeFakeCredentials(gw, ownerToken, fakes);
    await engine().warmUp();
  });
  afterAll(async () => {
    await gw?.close();
    await fakes?.openai.close();
    await fakes?.anthropic.close();
  });

  describe.each(["grpc", "grpc-web", "connect"] as const)("over %s", (protocol) => {
    it("the local provider out of the box: the text deltas make the end's text, the chunks a WAV file", async () => {
      const c = await converse({ provider: "local", prompt: "Tell me about portcullises.", format: AudioFormat.WAV, sampleRateHz: 16000, chunkSizeBytes: 2048 }, protocol);
      expect(c.order[0]).toBe("header");
      expect(c.order.at(-1)).toBe("end");
      expect(c.header).toMatchObject({ format: AudioFormat.WAV, sampleRateHz: 16000, channels: 1, contentType: "audio/wav", chunkSizeBytes: 2048, voice: expect.any(String) });
      expect(c.end).toMatchObject({ provider: "local", model: "local-echo", finishReason: FinishReason.STOP });
      expect(c.deltas.join("")).toBe(c.end.text);
      expect(c.end.text).toMatch(/^This is the Portcullis local responder, not a language model\. You asked: «Tell me about portcullises\.»/);
      expect(c.end.usage!.outputTokens).toBe(c.deltas.length);
      // Audio: numbered in order, every chunk but the last of the header's size, totals as sent.
      expect(c.chunks.map((ch) => ch.sequence)).toEqual(c.chunks.map((_, i) => i));
      expect(c.chunks.slice(0, -1).every((ch) => ch.data.length === 2048)).toBe(true);
      expect(c.end.audio).toMatchObject({ totalBytes: BigInt(c.audio.length), totalChunks: c.chunks.length });
      const wav = await python(PY_WAVE, c.audio);
      expect(wav).toMatchObject({ channels: 1, sampwidth: 2, rate: 16000, comptype: "NONE" });
      const seconds = (wav["frames"] as number) / 16000;
      const spoken = c.end.text.length;
      expect(seconds).toBeGreaterThan(spoken * 0.04);
      expect(seconds).toBeLessThan(spoken * 0.2);
      expect(Number(c.end.audio!.duration!.seconds) + c.end.audio!.duration!.nanos / 1e9).toBeCloseTo(seconds, 1);
    });

    it("a provider's answer is spoken while it is written: the first audio arrives before the last text delta", async () => {
      const fake = fakes.openai;
      fake.enqueue({ kind: "answer", words: HELD_WORDS, hold: true, usage: { input: 9, output: 5 } });
      const messages: ConverseResponse[] = [];
      let heldWhenAudioArrived: boolean | undefined;
      for await (const m of audio(protocol).converse({ provider: "openai", prompt: "Two sentences, please.", format: AudioFormat.PCM_S16LE })) {
        messages.push(m);
        if (m.payload.case === "audioChunk" && heldWhenAudioArrived === undefined) {
          // The fake still holds the rest of the answer: the first sentence is being heard before it is finished.
          heldWhenAudioArrived = !fake.sentLast;
          fake.release();
        }
      }
      expect(heldWhenAudioArrived).toBe(true);
      const c = collect(messages);
      expect(c.deltas.join("")).toBe(HELD_WORDS.join(""));
      expect(c.end).toMatchObject({ text: HELD_WORDS.join(""), provider: "openai", model: "gpt-fake", finishReason: FinishReason.STOP, usage: { inputTokens: 9, outputTokens: 5, totalTokens: 14 } });
      const firstAudio = c.order.indexOf("audioChunk");
      const lastText = c.order.lastIndexOf("textDelta");
      expect(firstAudio).toBeGreaterThan(c.order.indexOf("textDelta"));
      expect(firstAudio).toBeLessThan(lastText);
      // Both sentences were spoken: about 0.06 s a character at 22,050 Hz, 16-bit.
      const seconds = c.audio.length / 2 / c.header.sampleRateHz;
      expect(seconds).toBeGreaterThan(c.end.text.length * 0.04);
      expect(c.end.audio!.totalBytes).toBe(BigInt(c.audio.length));
      // The provider got the prompt as Query sends it.
      expect(fake.completions().at(-1)!.body).toMatchObject({ stream: true, messages: [{ role: "user", content: "Two sentences, please." }] });
    });

    it("bad input is refused before the first message with Synthesize's and Query's codes", async () => {
      const cases: Array<[ConverseInit, Code]> = [
        [{ prompt: "" }, Code.InvalidArgument],
        [{ prompt: " \n " }, Code.InvalidArgument],
        [{ prompt: "x".repeat(5001) }, Code.InvalidArgument],
        [{ prompt: "hi", provider: "no-such-provider" }, Code.NotFound],
        [{ prompt: "hi", provider: "openai", model: "no-such-model" }, Code.NotFound],
        [{ prompt: "hi", temperature: 3.0 }, Code.InvalidArgument],
        [{ prompt: "hi", temperature: -0.5 }, Code.InvalidArgument],
        [{ prompt: "hi", maxTokens: 0 }, Code.InvalidArgument],
        [{ prompt: "hi", maxTokens: -1 }, Code.InvalidArgument],
        [{ prompt: "hi", voice: "no-such-voice" }, Code.NotFound],
        [{ prompt: "hi", sampleRateHz: 7999 }, Code.InvalidArgument],
        [{ prompt: "hi", sampleRateHz: 1_000_000 }, Code.InvalidArgument],
        [{ prompt: "hi", sampleRateHz: -1 }, Code.InvalidArgument],
        [{ prompt: "hi", chunkSizeBytes: 255 }, Code.InvalidArgument],
        [{ prompt: "hi", chunkSizeBytes: 65537 }, Code.InvalidArgument],
        [{ prompt: "hi", chunkSizeBytes: -1 }, Code.InvalidArgument],
        [{ prompt: "hi", format: 99 as AudioFormat }, Code.Unimplemented],
        [{ prompt: "hi", format: AudioFormat.OGG_OPUS, sampleRateHz: 44100 }, Code.InvalidArgument],
      ];
      const completionsBefore = fakes.openai.completions().length;
      const seen: unknown[] = [];
      for (const [request] of cases) {
        const { error, received } = await failure({ provider: "local", ...request }, protocol);
        seen.push([JSON.stringify({ provider: "local", ...request }).slice(0, 60), error.code, received.length, error.rawMessage.length > 0]);
      }
      expect(seen).toEqual(cases.map(([request, code]) => [JSON.stringify({ provider: "local", ...request }).slice(0, 60), code, 0, true]));
      expect(fakes.openai.completions().length).toBe(completionsBefore); // nothing reached a provider
      expect(gw.gateway.audio.service.openStreams()).toEqual([]);
    });
  });

  it("a key whose token budget is spent is refused before the first message, with BUDGET_EXCEEDED", async () => {
    const keys = gw.client(ApiKeyService, { token: userToken });
    const { secret } = await keys.createApiKey({ name: "speaker", scopes: ["audio.stream"], dailyTokenBudget: 20n });
    fakes.openai.enqueue({ kind: "answer", words: ["Spent."], usage: { input: 10, output: 15 } });
    const first = await converse({ provider: "openai", prompt: "spend it", maxTokens: 5 }, "connect", secret);
    expect(first.end.text).toBe("Spent.");
    const { error, received } = await failure({ provider: "openai", prompt: "and again", maxTokens: 5 }, "grpc", secret);
    expect([error.code, errorInfo(error)?.reason, received]).toEqual([Code.ResourceExhausted, ErrorReason.BUDGET_EXCEEDED, []]);
    expect(gw.gateway.audio.service.openStreams()).toEqual([]);
    const denied = (await gw.auditEvents("ai.query")).filter((e) => e["outcome"] === "denied");
    expect(denied.at(-1)).toMatchObject({ reason: "budget_exceeded", metadata: { mode: "converse" } });
  });

  it("cancelling mid-answer ends the provider request and stops the engine", async () => {
    const fake = fakes.openai;
    const pid = engine().processes()[0]!.pid!;
    // A long first delta keeps the engine busy while the provider holds the rest of the answer.
    const long = Array.from({ length: 12 }, (_, i) => `This is sentence number ${i + 1} of an answer that takes a while to speak.`).join(" ");
    fake.enqueue({ kind: "answer", words: [`${long} And`, " the", " end."], hold: true });
    const disconnected = fake.nextDisconnect();
    const stop = new AbortController();
    let chunks = 0;
    let code: Code | "ended" = "ended";
    try {
      for await (const m of audio().converse({ provider: "openai", prompt: "talk", format: AudioFormat.WAV, sampleRateHz: 48000 }, { signal: stop.signal })) {
        if (m.payload.case === "audioChunk" && ++chunks === 5) stop.abort();
      }
    } catch (error) {
      code = ConnectError.from(error).code;
    }
    expect(code).toBe(Code.Canceled);
    await disconnected; // the provider saw its client go
    expect(fake.sentLast).toBe(false);
    expect(await eventually(() => gw.gateway.audio.service.openStreams().length === 0)).toBe(true);
    expect(await eventually(() => engineIdle(pid))).toBe(true);
    expect(engine().processes()).toEqual([{ pid, ready: true, sessions: 0, pendingJobs: 0 }]);
    fake.release();
    // Counted and audited as cancelled: Query's audit, and the conversation's own.
    await expect.poll(async () => (await gw.auditEvents("ai.query")).at(-1)).toMatchObject({ outcome: "failure", reason: "cancelled", metadata: { mode: "converse", provider: "openai" } });
    await expect.poll(async () => (await gw.auditEvents("audio.converse")).at(-1)).toMatchObject({ outcome: "failure", metadata: { provider: "openai", format: "wav", sample_rate_hz: 48000 } });
  });

  it("a provider failing before its first delta fails the call before any message; after it, in place of the end", async () => {
    fakes.openai.enqueue({ kind: "status", status: 401 });
    const refused = await failure({ provider: "openai", prompt: "hi" });
    expect([refused.error.code, refused.received]).toEqual([Code.Unavailable, []]);
    expect(refused.error.rawMessage).not.toContain(fakes.openai.apiKey);

    fakes.openai.enqueue({ kind: "hang" });
    const late = await failure({ provider: "openai-hasty", prompt: "hi" }, "connect");
    expect([late.error.code, late.received]).toEqual([Code.DeadlineExceeded, []]);

    fakes.openai.enqueue({ kind: "cut" });
    const cut = await failure({ provider: "openai", prompt: "hi" });
    expect(cut.error.code).toBe(Code.Unavailable);
    expect(cut.received.slice(0, 2)).toEqual(["header", "textDelta"]);
    expect(cut.received).not.toContain("end");
    expect(await eventually(() => gw.gateway.audio.service.openStreams().length === 0)).toBe(true);
  });

  it("is audited once per conversation, never with the prompt or the answer, beside the AI query", async () => {
    await converse({ provider: "local", prompt: "secret-otter-plan" });
    const events = await gw.auditEvents("audio.converse");
    expect(events.at(-1)).toMatchObject({
      outcome: "success",
      method: "/portcullis.v1.AudioStreamService/Converse",
      metadata: { provider: "local", model: "local-echo", format: "pcm_s16le", sentences: 3 },
    });
    const queries = await gw.auditEvents("ai.query");
    expect(queries.at(-1)).toMatchObject({ outcome: "success", metadata: { mode: "converse", provider: "local" } });
    expect(JSON.stringify([...events, ...queries])).not.toMatch(/secret-otter-plan|local responder/);
  });

  it("GetStatus reports the speech engine: its name, and healthy while it serves", async () => {
    const status = await gw.client(AiService, { token: userToken }).getStatus({});
    expect(status.ttsEngine).toMatchObject({ name: expect.stringMatching(/^eSpeak NG/), health: HealthState.HEALTHY, detail: "" });
  });

  it("a long, quiet Converse outlives the body and idle timeouts, over HTTP/2 and HTTP/1.1", async () => {
    // A second instance on the same database with both limits far shorter than the provider's pause.
    const quick = await startAiGateway(dbName, fakes, { PORTCULLIS_TTS_ENGINE_PROCESSES: "1", PORTCULLIS_BODY_TIMEOUT_MS: "150", PORTCULLIS_IDLE_TIMEOUT_MS: "300" });
    try {
      const clients = [
        quick.client(AudioStreamService, { token: userToken, protocol: "grpc" }),
        createClient(AudioStreamService, createPortcullisTransport({ baseUrl: quick.baseUrl, protocol: "connect", httpVersion: "1.1", token: userToken, interceptors: [captureSecrets] })),
      ];
      for (const client of clients) {
        fakes.openai.enqueue({ kind: "answer", words: HELD_WORDS, hold: true });
        const messages: ConverseResponse[] = [];
        for await (const m of client.converse({ provider: "openai", prompt: "take your time" })) {
          messages.push(m);
          if (m.payload.case === "audioChunk" && !fakes.openai.sentLast && messages.filter((x) => x.payload.case === "audioChunk").length === 1) {
            // The stream goes quiet for longer than both limits: the first sentence is spoken, the rest held.
            await eventually(() => quick.gateway.audio.service.openStreams()[0]?.bufferedBytes === 0, 10_000);
            await new Promise((resolve) => setTimeout(resolve, 1_200));
            fakes.openai.release();
          }
        }
        expect(collect(messages).end.text).toBe(HELD_WORDS.join(""));
      }
      await quick.gateway.audio.engine.stop();
      const status = await quick.client(AiService, { token: userToken }).getStatus({});
      expect(status.ttsEngine).toMatchObject({ health: HealthState.UNHEALTHY, detail: "shut down" });
    } finally {
      await quick.close();
    }
  }, 60_000);
});
