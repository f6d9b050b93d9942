// Benchmark: what the gateway adds to a streamed AI answer. A fake OpenAI-compatible provider (a real
// HTTP server speaking server-sent events, test/helpers/fake-providers.ts, in a process of its own)
// answers; the same streams are read (1) directly from the fake with undici and the gateway's own SSE
// reader, and (2) through the real gateway process (QueryStream over gRPC with an API key). Figures: time to the first delta, p50 and
// p99, at 1 and 50 concurrent streams, and the gateway's difference (goal: under 2 ms at p50); streamed
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
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bench-ai-"));
  const env = {
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_DB_NAME: `bench_ai_${process.pid}`,
    PORTCULLIS_RATE_LIMIT_EXPENSIVE: "10000000",
    PORTCULLIS_RATE_LIMIT_DEFAULT: "10000000",
    PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000000",
    PORTCULLIS_AI_MAX_TOKENS: String(STREAM_WORDS * 2),
    PORTCULLIS_AI_PROVIDERS: JSON.stringify([{ name: "fake", kind: "openai", baseUrl: fake.baseUrl, defaultModel: "gpt-fake", credential: "default" }]),
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
