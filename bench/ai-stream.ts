// Benchmark: what the gateway adds to a streamed AI answer. A fake OpenAI-compatible provider (a real
// HTTP server speaking server-sent events, test/helpers/fake-providers.ts, in a process of its own)
// answers; the same streams are read (1) directly from the fake with undici and the gateway's own SSE
// reader, and (2) through the real gateway process (QueryStream over gRPC with an API key). Figures: time to the first delta, p50 and
// p99, at 1 and 50 concurrent streams (a closed loop of 50 callers: the gateway saturated), and of a new
// stream while 50 others are open and streaming; the gateway's difference (goal: under 2 ms at p50); streamed
// deltas per second through the gateway against the fake alone (goal: at least 0.9×). Loopback only,
// bounded in count.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Agent, request } from "undici";
import { AiService } from "../gen/portcullis/v1/ai_pb.js";
import { ApiKeyService } from "../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { readServerSentEvents } from "../src/providers/sse-reader.ts";
import { quantile, runCli, startGatewayProcess } from "./gateway-process.ts";

const TTFD_SAMPLES = Number(process.env["BENCH_AI_SAMPLES"] ?? 400);
const STREAM_WORDS = Number(process.env["BENCH_AI_WORDS"] ?? 2_000);
const THROUGHPUT_STREAMS = Number(process.env["BENCH_AI_STREAMS"] ?? 8);
const THROUGHPUT_ROUNDS = 3;
const OPEN_STREAMS = 50;
const OPEN_DELTA_MS = 20;

/** Reads one answer of `words` words; the time to its first text, and the text. */
type Reader = (words: number) => Promise<{ ttfdMs: number; text: string }>;

/** The fake provider process: its base URL and key, and how to stop it. */
export async function startFakeProcess(env: Record<string, string> = {}): Promise<{ baseUrl: string; apiKey: string; stop(): Promise<void> }> {
  const apiKey = `sk-bench-${randomBytes(12).toString("hex")}`;
  const child = spawn(process.execPath, [new URL("./fake-provider-process.ts", import.meta.url).pathname], {
    env: { ...process.env, ...env, BENCH_FAKE_API_KEY: apiKey },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => resolve((JSON.parse(line) as { baseUrl: string }).baseUrl));
    void exited.then(() => reject(new Error("the fake provider exited before listening")));
  });
  return {
    baseUrl,
    apiKey,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export async function benchAiStream(): Promise<Record<string, string>> {
  const fake = await startFakeProcess();
  // A second provider that writes a delta every 20 ms, as a model does: the answers kept open while new
  // streams are timed.
  const slowFake = await startFakeProcess({ BENCH_FAKE_DELAY_MS: String(OPEN_DELTA_MS) });
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bench-ai-"));
  const env = {
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_DB_NAME: `bench_ai_${process.pid}`,
    PORTCULLIS_RATE_LIMIT_EXPENSIVE: "10000000",
    PORTCULLIS_RATE_LIMIT_DEFAULT: "10000000",
    PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000000",
    PORTCULLIS_AI_MAX_TOKENS: String(STREAM_WORDS * 2),
    PORTCULLIS_AI_PROVIDERS: JSON.stringify([
      { name: "fake", kind: "openai", baseUrl: fake.baseUrl, defaultModel: "gpt-fake", credential: "default" },
      { name: "slow", kind: "openai", baseUrl: slowFake.baseUrl, defaultModel: "gpt-fake", credential: "default" },
    ]),
  };
  const gateway = await startGatewayProcess(env);
  const agent = new Agent({ connections: 256 });
  try {
    const output = runCli(["bootstrap-owner", "--username", "bench-ai", "--generate"], env);
    const password = /: (\S+)\s*$/.exec(output)?.[1];
    if (!password) throw new Error("bootstrap-owner printed no password");
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` });
    const { accessToken } = await createClient(AuthService, transport).login({ username: "bench-ai", password });
    const owner = { headers: { authorization: `Bearer ${accessToken}` } };
    await createClient(AiService, transport).putProviderCredential({ provider: "fake", name: "default", secret: fake.apiKey }, owner);
    await createClient(AiService, transport).putProviderCredential({ provider: "slow", name: "default", secret: slowFake.apiKey }, owner);
    const { secret: apiKey } = await createClient(ApiKeyService, transport).createApiKey({ name: "bench", scopes: ["ai.query", "ai.status"] }, owner);
    const ai = createClient(AiService, transport);

    const throughGateway: Reader = async (words) => {
      const started = performance.now();
      let ttfdMs = Number.NaN;
      let text = "";
      for await (const message of ai.queryStream({ prompt: "bench", maxTokens: words }, { headers: { "x-api-key": apiKey } })) {
        if (message.textDelta === "") continue;
        if (text === "") ttfdMs = performance.now() - started;
        text += message.textDelta;
      }
      return { ttfdMs, text };
    };
    const direct: Reader = async (words) => {
      const started = performance.now();
      let ttfdMs = Number.NaN;
      let text = "";
      const response = await request(`${fake.baseUrl}/chat/completions`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/json", authorization: `Bearer ${fake.apiKey}` },
        body: JSON.stringify({ model: "gpt-fake", messages: [{ role: "user", content: "bench" }], max_tokens: words, stream: true, stream_options: { include_usage: true } }),
      });
      for await (const { data } of readServerSentEvents(response.body)) {
        if (data === "[DONE]") break;
        const content = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content;
        if (!content) continue;
        if (text === "") ttfdMs = performance.now() - started;
        text += content;
      }
      return { ttfdMs, text };
    };

    const figures: Record<string, string> = {};
    // Warm both paths (connections, JIT) before measuring.
    await ttfd(direct, 1, 50);
    await ttfd(throughGateway, 1, 50);
    // Context: what any unary RPC with the same key costs through the gateway at the same concurrency
    // (transport, interceptors, framing, and the Node client itself), which every streamed answer pays too.
    const unary: Reader = async () => {
      const started = performance.now();
      await ai.getStatus({}, { headers: { "x-api-key": apiKey } });
      return { ttfdMs: performance.now() - started, text: "" };
    };
    for (const concurrency of [1, 50]) {
      const d = await ttfd(direct, concurrency, TTFD_SAMPLES);
      const g = await ttfd(throughGateway, concurrency, TTFD_SAMPLES);
      const u = await ttfd(unary, concurrency, TTFD_SAMPLES);
      figures[`time to first delta, ${concurrency} stream(s): direct p50 / p99 ms`] = `${d.p50.toFixed(2)} / ${d.p99.toFixed(2)}`;
      figures[`  through the gateway at ${concurrency}: p50 / p99 ms`] = `${g.p50.toFixed(2)} / ${g.p99.toFixed(2)}`;
      figures[`  added by the gateway at ${concurrency}: p50 / p99 ms (goal p50 < 2)`] = `${(g.p50 - d.p50).toFixed(2)} / ${(g.p99 - d.p99).toFixed(2)}`;
      figures[`  baseline: a unary RPC (GetStatus) at ${concurrency}, p50 / p99 ms`] = `${u.p50.toFixed(2)} / ${u.p99.toFixed(2)}`;
    }
    // A new stream while OPEN_STREAMS others are open and streaming (a delta every 20 ms each): what a
    // caller waits for on a busy gateway, rather than the saturation of a closed loop of 50 callers.
    let openDeltas = 0;
    const openStreams = async (opener: (signal: AbortSignal) => Promise<unknown>) => {
      const stop = new AbortController();
      const open = Array.from({ length: OPEN_STREAMS }, () => opener(stop.signal).catch(() => undefined));
      await new Promise((resolve) => setTimeout(resolve, 500)); // all open and streaming
      openDeltas = 0;
      const started = performance.now();
      return async () => {
        const perSecond = openDeltas / ((performance.now() - started) / 1000);
        stop.abort();
        await Promise.all(open);
        // Proof that they were streaming the whole time: about OPEN_STREAMS × 1000 / OPEN_DELTA_MS.
        if (perSecond < (0.5 * OPEN_STREAMS * 1000) / OPEN_DELTA_MS) throw new Error(`the open streams delivered only ${perSecond.toFixed(0)} deltas/s`);
        return perSecond;
      };
    };
    const directOpen = await openStreams(async (signal) => {
      const response = await request(`${slowFake.baseUrl}/chat/completions`, {
        method: "POST",
        dispatcher: agent,
        signal,
        headers: { "content-type": "application/json", authorization: `Bearer ${slowFake.apiKey}` },
        body: JSON.stringify({ model: "gpt-fake", messages: [{ role: "user", content: "open" }], max_tokens: STREAM_WORDS, stream: true }),
      });
      for await (const _ of readServerSentEvents(response.body)) {
        if (signal.aborted) break;
        openDeltas++;
      }
    });
    const dOpen = await ttfd(direct, 1, TTFD_SAMPLES);
    await directOpen();
    const gatewayOpen = await openStreams(async (signal) => {
      for await (const message of ai.queryStream({ prompt: "open", provider: "slow", maxTokens: STREAM_WORDS }, { headers: { "x-api-key": apiKey }, signal })) {
        if (signal.aborted) break;
        if (message.textDelta !== "") openDeltas++;
      }
    });
    const gOpen = await ttfd(throughGateway, 1, TTFD_SAMPLES);
    const gatewayOpenRate = await gatewayOpen();
    figures[`time to first delta of a new stream while ${OPEN_STREAMS} are open: direct p50 / p99 ms`] = `${dOpen.p50.toFixed(2)} / ${dOpen.p99.toFixed(2)}`;
    figures[`  through the gateway: p50 / p99 ms`] = `${gOpen.p50.toFixed(2)} / ${gOpen.p99.toFixed(2)}`;
    figures[`  the open streams' deltas/s through the gateway meanwhile`] = gatewayOpenRate.toFixed(0);
    figures[`  added by the gateway: p50 / p99 ms (goal p50 < 2)`] = `${(gOpen.p50 - dOpen.p50).toFixed(2)} / ${(gOpen.p99 - dOpen.p99).toFixed(2)}`;
    const directRates: number[] = [];
    const gatewayRates: number[] = [];
    for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
      directRates.push(await throughput(direct));
      gatewayRates.push(await throughput(throughGateway));
    }
    const median = (values: number[]) => quantile(values, 0.5);
    figures[`provider deltas/s, ${THROUGHPUT_STREAMS} streams of ${STREAM_WORDS}: fake alone`] = median(directRates).toFixed(0);
    figures[`  through the gateway`] = median(gatewayRates).toFixed(0);
    figures[`  gateway ÷ fake alone (goal >= 0.9), median of ${THROUGHPUT_ROUNDS}`] = (median(gatewayRates) / median(directRates)).toFixed(2);
    return figures;
  } finally {
    await agent.close();
    await gateway.stop();
    await fake.stop();
    await slowFake.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `samples` short answers read `concurrency` at a time; time to the first delta of each. */
async function ttfd(read: Reader, concurrency: number, samples: number): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  let started = 0;
  const worker = async () => {
    while (started < samples) {
      started++;
      times.push((await read(3)).ttfdMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

/**
 * Provider deltas delivered per second over THROUGHPUT_STREAMS long answers read at once. Each delta of
 * the fake is one word "w", so the count is the number of words that arrived, whether the gateway sent
 * them one per message or several per message (deltas that arrive together from the provider leave
 * together).
 */
async function throughput(read: Reader): Promise<number> {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: THROUGHPUT_STREAMS }, () => read(STREAM_WORDS)));
  const seconds = (performance.now() - started) / 1000;
  const total = results.reduce((n, r) => n + r.text.split("w").length - 1, 0);
  if (total !== THROUGHPUT_STREAMS * STREAM_WORDS) throw new Error(`lost deltas: ${total} of ${THROUGHPUT_STREAMS * STREAM_WORDS}`);
  return total / seconds;
}
