// Benchmark: speech through the gateway. Against the real gateway process (`node src/main.ts` on the
// embedded database, its eSpeak pool warmed up at start), over gRPC on loopback, bounded in time:
// - time to the first audio chunk of a one-sentence text, p50/p99, at 1 and 8 concurrent streams;
// - the engine's real-time factor (audio seconds per second of synthesis, the pool on its own);
// - audio bytes per second through the gateway against the engine alone, same text and format;
// - the gateway's memory per open (paused) stream, and with a slow reader after 60 s;
// - Converse with the built-in local provider: time to the first text delta and to the first audio chunk.
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AudioFormat, AudioStreamService, type SynthesizeResponse } from "../gen/portcullis/v1/audio_stream_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { createEspeakEngine } from "../src/tts/espeak-engine.ts";
import { quantile, runCli, startGatewayProcess } from "./gateway-process.ts";

const ONE_SENTENCE = "The quick brown fox jumps over the lazy dog.";
const LONG_TEXT = Array.from({ length: 40 }, (_, i) => `This is sentence number ${i + 1} of a long text that keeps the engine busy for a while.`).join(" ");
const TTFA_CALLS = 200;
const CONVERSE_CALLS = 100;
const OPEN_STREAMS = 50;
const SLOW_SECONDS = Number(process.env["BENCH_AUDIO_SLOW_SECONDS"] ?? 60);

const rssKiB = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN);
const MIB = 1024 * 1024;
/** CPU time a process has used, in ms (clock ticks of 10 ms). */
const cpuMs = async (pid: number) => {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const ms = (values: number[]) => `${quantile(values, 0.5).toFixed(1)} / ${quantile(values, 0.99).toFixed(1)}`;

/** A gateway process under test: its AudioStreamService client, the owner's auth headers, its pid. */
interface Gateway {
  readonly audio: Client<typeof AudioStreamService>;
  readonly headers: Record<string, string>;
  readonly pid: number;
  readonly baseUrl: string;
  /** The gateway's live memory after a full garbage collection (heap used plus buffers), in bytes. */
  liveBytes(): Promise<number>;
}

/** Runs `run` against a fresh gateway process with an owner logged in and the speech path warmed up. */
async function withGateway<T>(name: string, run: (gateway: Gateway) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bench-"));
  const memoryFile = join(dataDir, "memory.jsonl");
  const env = {
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_DB_NAME: `bench_audio_${name}_${process.pid}`,
    PORTCULLIS_RATE_LIMIT_EXPENSIVE: "1000000",
    PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000000",
    PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL: String(OPEN_STREAMS + 10),
  };
  const probe = fileURLToPath(new URL("./memory-probe.ts", import.meta.url));
  const gateway = await startGatewayProcess({ ...env, BENCH_MEMORY_FILE: memoryFile, NODE_OPTIONS: `--expose-gc --import=${probe}` });
  const liveBytes = async () => {
    const before = (await readFile(memoryFile, "utf8").catch(() => "")).length;
    gateway.child.kill("SIGUSR2");
    for (;;) {
      const text = await readFile(memoryFile, "utf8").catch(() => "");
      if (text.length > before) {
        const m = JSON.parse(text.slice(before).trim().split("\n")[0]!) as { heapUsed: number; external: number };
        return m.heapUsed + m.external;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    const output = runCli(["bootstrap-owner", "--username", "bench-owner", "--generate"], env);
    const password = /: (\S+)\s*$/.exec(output)?.[1];
    if (!password) throw new Error("bootstrap-owner printed no password");
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` });
    const { accessToken } = await createClient(AuthService, transport).login({ username: "bench-owner", password });
    const audio = createClient(AudioStreamService, transport);
    const headers = { authorization: `Bearer ${accessToken}` };
    // Warm up the gateway, the client and the engine: eSpeak's compiled JavaScript runs several times
    // slower until the JIT has seen it, so a long text first.
    for await (const _ of audio.synthesize({ text: LONG_TEXT }, { headers }));
    for (let i = 0; i < 20; i++) for await (const _ of audio.synthesize({ text: ONE_SENTENCE }, { headers }));
    return await run({ audio, headers, pid: gateway.child.pid!, baseUrl: `http://127.0.0.1:${gateway.port}`, liveBytes });
  } finally {
    await gateway.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function benchAudioStream(): Promise<Record<string, string>> {
  const speed = await withGateway("speed", benchSpeed);
  const memory = await withGateway("memory", benchOpenStreams);
  const slow = await withGateway("slow", benchSlowReader);
  return { ...speed, ...memory, ...slow };
}

async function benchSpeed({ audio, headers, baseUrl, pid }: Gateway): Promise<Record<string, string>> {
  const engine = createEspeakEngine({ processes: 1, onLog: () => undefined });
  try {
    /** Milliseconds from the call to its first chunk; reads the stream to its end. */
    const firstChunk = async (text: string) => {
      const started = performance.now();
      let first = Number.NaN;
      for await (const m of audio.synthesize({ text }, { headers })) if (m.payload.case === "chunk" && Number.isNaN(first)) first = performance.now() - started;
      return first;
    };
    /** Audio bytes per second through the gateway, reading as fast as it can. */
    const throughGateway = async (client: Client<typeof AudioStreamService>) => {
      const started = performance.now();
      let bytes = 0;
      for await (const m of client.synthesize({ text: LONG_TEXT, format: AudioFormat.PCM_S16LE, chunking: { case: "chunkSizeBytes", value: 65536 } }, { headers }))
        if (m.payload.case === "chunk") bytes += m.payload.value.data.length;
      return bytes / ((performance.now() - started) / 1000);
    };
    // Node's HTTP/2 client keeps the default 64 KiB stream window, so a bulk download waits a round trip
    // per 64 KiB; gRPC clients such as grpc-go grow theirs. Both are measured.
    const wide = createClient(AudioStreamService, createGrpcTransport({ baseUrl, nodeOptions: { settings: { initialWindowSize: 4 * 1024 * 1024 } } }));

    await engine.warmUp();

    const single: number[] = [];
    for (let i = 0; i < TTFA_CALLS; i++) single.push(await firstChunk(ONE_SENTENCE));
    const concurrent: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < TTFA_CALLS / 8; i++) concurrent.push(await firstChunk(ONE_SENTENCE));
      }),
    );

    // The engine alone: the same pool code the gateway runs, driven directly, no RPC.
    const alone = async () => {
      const session = await engine.open({ voiceId: "gmw/en", speakingRate: 1, encoding: "pcm_s16le", sampleRateHz: 22050 });
      const started = performance.now();
      let bytes = 0;
      let samples = 0;
      for (const sentence of LONG_TEXT.split(/(?<=\.) /)) {
        for await (const piece of session.speak(sentence, new AbortController().signal)) {
          bytes += piece.data.length;
          samples += piece.samples;
        }
      }
      const seconds = (performance.now() - started) / 1000;
      session.close();
      return { bytesPerSecond: bytes / seconds, realTime: samples / 22050 / seconds };
    };
    // Interleaved rounds after a warm-up of each, so the machine's noise falls on both alike.
    await alone();
    await throughGateway(wide);
    const engineRuns: Array<{ bytesPerSecond: number; realTime: number }> = [];
    const gatewayRuns: number[] = [];
    const defaultWindowRuns: number[] = [];
    // CPU per megabyte, which the machine's other load does not distort: the gateway process's own
    // (the engine processes are its children, counted apart) and the engine process's.
    const enginePid = engine.processes()[0]!.pid!;
    let engineCpu = 0;
    let gatewayCpu = 0;
    let engineBytes = 0;
    let gatewayBytes = 0;
    for (let round = 0; round < 5; round++) {
      let before = await cpuMs(enginePid);
      let started = performance.now();
      engineRuns.push(await alone());
      engineCpu += (await cpuMs(enginePid)) - before;
      engineBytes += engineRuns.at(-1)!.bytesPerSecond * ((performance.now() - started) / 1000);
      before = await cpuMs(pid);
      started = performance.now();
      gatewayRuns.push(await throughGateway(wide));
      gatewayCpu += (await cpuMs(pid)) - before;
      gatewayBytes += gatewayRuns.at(-1)! * ((performance.now() - started) / 1000);
      defaultWindowRuns.push(await throughGateway(audio));
    }
    const engineBps = quantile(
      engineRuns.map((r) => r.bytesPerSecond),
      0.5,
    );

    // Converse with the local provider (the default with no provider configured): the answer's first
    // sentence is complete after a dozen one-word deltas, so its speech starts before the answer ends.
    const firstText: number[] = [];
    const firstAudio: number[] = [];
    for (let i = 0; i < CONVERSE_CALLS; i++) {
      const started = performance.now();
      let text = Number.NaN;
      let chunk = Number.NaN;
      for await (const m of audio.converse({ prompt: "What is a portcullis?" }, { headers })) {
        if (m.payload.case === "textDelta" && Number.isNaN(text)) text = performance.now() - started;
        if (m.payload.case === "audioChunk" && Number.isNaN(chunk)) chunk = performance.now() - started;
      }
      firstText.push(text);
      firstAudio.push(chunk);
    }
    const gatewayBps = quantile(gatewayRuns, 0.5);

    return {
      "time to first chunk, 1 stream, p50 / p99 ms": `${ms(single)} (${single.length} calls; goal p50 ≤ 50 ms)`,
      "time to first chunk, 8 concurrent streams, p50 / p99 ms": `${ms(concurrent)} (${concurrent.length} calls)`,
      "engine real-time factor (pool alone, PCM 22.05 kHz)": `${engineRuns.map((r) => r.realTime.toFixed(0)).join(", ")} × real time, median ${quantile(
        engineRuns.map((r) => r.realTime),
        0.5,
      ).toFixed(0)} (goal ≥ 100×)`,
      "audio bytes/s: engine alone": `${engineRuns.map((r) => (r.bytesPerSecond / 1e6).toFixed(2)).join(", ")} MB/s`,
      "audio bytes/s: through the gateway (gRPC, 4 MiB window)": `${gatewayRuns.map((v) => (v / 1e6).toFixed(2)).join(", ")} MB/s`,
      "gateway ÷ engine alone (medians)": `${(gatewayBps / engineBps).toFixed(2)} (goal ≥ 0.9)`,
      "CPU per MB of audio: gateway process / engine process": `${(gatewayCpu / (gatewayBytes / 1e6)).toFixed(0)} / ${(engineCpu / (engineBytes / 1e6)).toFixed(0)} ms`,
      "Converse (local provider): first text delta, p50 / p99 ms": `${ms(firstText)} (${firstText.length} calls)`,
      "Converse (local provider): first audio chunk, p50 / p99 ms": `${ms(firstAudio)}`,
      "audio bytes/s: through the gateway (Node's 64 KiB window)": `${defaultWindowRuns.map((v) => (v / 1e6).toFixed(2)).join(", ")} MB/s: ÷ engine ${(quantile(defaultWindowRuns, 0.5) / engineBps).toFixed(2)}`,
    };
  } finally {
    await engine.stop();
  }
}

/** Memory per open stream: streams that read their header and first chunk, then wait (paused). */
async function benchOpenStreams({ audio, headers, pid, liveBytes }: Gateway): Promise<Record<string, string>> {
  const before = await liveBytes();
  const stops = Array.from({ length: OPEN_STREAMS }, () => new AbortController());
  const held = await Promise.all(
    stops.map(async (stop) => {
      const it = audio.synthesize({ text: LONG_TEXT }, { headers, signal: stop.signal })[Symbol.asyncIterator]();
      await it.next();
      await it.next();
      return it;
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 3000)); // each fills its buffer and pauses
  const after = await liveBytes();
  const engines = await engineRss(pid);
  for (const stop of stops) stop.abort();
  await Promise.all(held.map((it) => it.next().catch(() => undefined)));
  return {
    [`gateway live memory per open, paused stream (${OPEN_STREAMS} streams)`]: `${((after - before) / OPEN_STREAMS / 1024).toFixed(0)} KiB (${(before / MIB).toFixed(1)} → ${(after / MIB).toFixed(1)} MiB after GC)`,
    "engine process RSS (with those streams)": engines.map((k) => `${(k / 1024).toFixed(0)} MiB`).join(", ") || "n/a",
  };
}

/** A slow reader: one 4 KiB chunk every 250 ms (a third of real time) for SLOW_SECONDS. */
async function benchSlowReader({ audio, headers, liveBytes }: Gateway): Promise<Record<string, string>> {
  const idle = await liveBytes();
  const stop = new AbortController();
  const slow = audio.synthesize({ text: LONG_TEXT }, { headers, signal: stop.signal })[Symbol.asyncIterator]();
  let read = 0;
  let early = Number.NaN;
  const started = Date.now();
  while (Date.now() - started < SLOW_SECONDS * 1000) {
    const step = await slow.next();
    if (step.done) break;
    const m: SynthesizeResponse = step.value;
    if (m.payload.case === "chunk") read += m.payload.value.data.length;
    if (Number.isNaN(early) && Date.now() - started > 5000) early = await liveBytes();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const late = await liveBytes();
  stop.abort();
  await slow.next().catch(() => undefined);
  return {
    [`gateway live memory with a slow reader: idle / at 5 s / at ${SLOW_SECONDS} s`]: `${(idle / MIB).toFixed(1)} / ${(early / MIB).toFixed(1)} / ${(late / MIB).toFixed(1)} MiB (read ${(read / 1e6).toFixed(2)} MB at 16 KB/s of ${((LONG_TEXT.length * 0.063 * 44100) / 1e6).toFixed(1)} MB)`,
  };
}

/** RSS of the gateway's engine processes (its children large enough to be eSpeak). */
async function engineRss(gatewayPid: number): Promise<number[]> {
  const children = (await readFile(`/proc/${gatewayPid}/task/${gatewayPid}/children`, "utf8").catch(() => "")).trim().split(/\s+/).filter(Boolean).map(Number);
  return (await Promise.all(children.map((pid) => rssKiB(pid).catch(() => Number.NaN)))).filter((v) => !Number.isNaN(v) && v > 50_000);
}
