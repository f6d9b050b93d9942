// Benchmark: the AI job queue. Gateway processes (`node src/main.ts`) share one embedded database run by
// this process (so that killing a gateway does not kill it); fake OpenAI-compatible providers run in
// processes of their own. Figures: jobs completed per second with a fast fake on 1 and 2 instances; the
// queue's own database round trips per job (counted in-process by the driver's command monitoring);
// the delay of an event from the instance running the job to a watcher on the other (p50/p95); the
// takeover time after kill -9 of the running instance (the rest of its lease, then poll and claim); and
// the CPU of an idle instance.
// Loopback only, bounded in count and time.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AiService, JobEventKind, JobStatus } from "../gen/portcullis/v1/ai_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { createGateway } from "../src/app/gateway.ts";
import { loadConfig } from "../src/config/config.ts";
import { loadOrCreateKeyring } from "../src/keys/keyring.ts";
import { createLogger } from "../src/log/logger.ts";
import { startEmbeddedDatabase } from "../src/embedded-db/index.ts";
import { openStore } from "../src/store/mongo-store.ts";
import { startFakeProcess } from "./ai-stream.ts";
import { quantile, runCli } from "./gateway-process.ts";

const JOBS = Number(process.env["BENCH_JOBS"] ?? 300);
const WORDS = 10;
const LEASE_MS = 3000;

interface Instance {
  readonly child: ChildProcess;
  readonly port: number;
  readonly instanceId: string;
  readonly exited: Promise<unknown>;
}

/** A gateway process; its job workers' instance id comes from its "job workers started" log line. */
async function startInstance(env: Record<string, string>): Promise<Instance> {
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: new URL("..", import.meta.url),
    env: { ...process.env, PORTCULLIS_PORT: "0", PORTCULLIS_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let instanceId = "";
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const parsed = JSON.parse(line) as { msg?: string; port?: number; instanceId?: string };
      if (parsed.msg === "job workers started") instanceId = parsed.instanceId ?? "";
      if (parsed.msg?.startsWith("listening on")) {
        lines.close();
        child.stdout!.resume();
        resolve(parsed.port!);
      }
    });
    void exited.then(() => reject(new Error("a gateway exited before listening")));
  });
  return { child, port, instanceId, exited };
}

async function stop(instance: Instance) {
  instance.child.kill("SIGTERM");
  await instance.exited;
}

export async function benchJobs(): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bench-jobs-"));
  const database = await startEmbeddedDatabase({ dataDir: join(dataDir, "db"), log: () => undefined });
  const fast = await startFakeProcess();
  const paced = await startFakeProcess({ BENCH_FAKE_DELAY_MS: "20" });
  const dbName = `bench_jobs_${process.pid}`;
  const key = () => randomBytes(32).toString("base64");
  const env = {
    MONGODB_URI: database.uri,
    PORTCULLIS_DB_NAME: dbName,
    PORTCULLIS_ENCRYPTION_KEY: key(),
    PORTCULLIS_API_KEY_PEPPER: key(),
    PORTCULLIS_RATE_LIMIT_EXPENSIVE: "10000000",
    PORTCULLIS_RATE_LIMIT_DEFAULT: "10000000",
    PORTCULLIS_JOB_MAX_UNFINISHED_PER_USER: "100000",
    PORTCULLIS_JOB_CONCURRENCY: "8",
    PORTCULLIS_JOB_LEASE_MS: String(LEASE_MS),
    PORTCULLIS_AI_PROVIDERS: JSON.stringify([
      { name: "fast", kind: "openai", baseUrl: fast.baseUrl, defaultModel: "gpt-fake", credential: "fast", default: true },
      { name: "paced", kind: "openai", baseUrl: paced.baseUrl, defaultModel: "gpt-fake", credential: "paced" },
    ]),
  };
  const figures: Record<string, string> = {};
  const instances: Instance[] = [];
  try {
    const a = await startInstance({ ...env, PORTCULLIS_DATA_DIR: join(dataDir, "a") });
    instances.push(a);
    const output = runCli(["bootstrap-owner", "--username", "bench-jobs", "--generate"], { ...env, PORTCULLIS_DATA_DIR: join(dataDir, "cli") });
    const password = /: (\S+)\s*$/.exec(output)?.[1];
    if (!password) throw new Error("bootstrap-owner printed no password");
    const clientOf = (instance: Instance) => createClient(AiService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${instance.port}` }));
    const { accessToken } = await createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${a.port}` })).login({ username: "bench-jobs", password });
    const auth = { headers: { authorization: `Bearer ${accessToken}` } };
    for (const [provider, fake] of [
      ["fast", fast],
      ["paced", paced],
    ] as const)
      await clientOf(a).putProviderCredential({ provider, name: provider, secret: fake.apiKey }, auth);

    // 0. An idle instance's CPU (its job workers poll the empty tickets once a second).
    figures["CPU of an idle gateway process over 20 s (job workers on)"] = `${(await idleCpu(a, 20_000)).toFixed(2)} % of a core`;

    // 1. Throughput: all jobs submitted at once, timed until the last outcome is decided (counted in
    // the small outcomes collection every 200 ms, so that watching costs the gateways nothing).
    const store = await openStore({ uri: database.uri, dbName });
    const outcomes = () => store.db.collection("job_outcomes").countDocuments({});
    const throughput = async (targets: Instance[]) => {
      const before = await outcomes();
      const started = performance.now();
      await Promise.all(Array.from({ length: JOBS }, async (_, i) => (await clientOf(targets[i % targets.length]!).submitJob({ prompt: `job ${i}`, maxTokens: WORDS }, auth)).job!.id));
      await waitUntil(async () => ((await outcomes()) >= before + JOBS ? true : undefined), 600_000, 200);
      return JOBS / ((performance.now() - started) / 1000);
    };
    figures[`jobs/s, 1 instance (${JOBS} jobs, ${WORDS} deltas each, concurrency 8)`] = (await throughput([a])).toFixed(1);
    const b = await startInstance({ ...env, PORTCULLIS_DATA_DIR: join(dataDir, "b") });
    instances.push(b);
    figures[`jobs/s, 2 instances (submitted to both)`] = (await throughput([a, b])).toFixed(1);

    // 2. Event delay: paced deltas (20 ms apart) from the running instance to a watcher on the other.
    const runnerOf = async (jobId: string) => {
      const claim = await waitUntil(async () => (await store.db.collection("job_claims").find({ jobId }).sort({ _id: -1 }).limit(1).toArray())[0]);
      return instances.find((i) => i.instanceId === claim["instanceId"]);
    };
    const delays: number[] = [];
    for (let round = 0; round < 10; round++) {
      const { job } = await clientOf(a).submitJob({ provider: "paced", prompt: `paced ${round}`, maxTokens: 50 }, auth);
      const runner = await runnerOf(job!.id);
      const watcher = clientOf(runner === a ? b : a);
      for await (const { event } of watcher.watchJob({ jobId: job!.id }, auth)) {
        if (event!.kind === JobEventKind.OUTPUT && event!.time) delays.push(Date.now() - (Number(event!.time.seconds) * 1000 + event!.time.nanos / 1e6));
      }
    }
    figures["event delay, running instance → watcher on the other, p50 / p95"] = `${quantile(delays, 0.5).toFixed(0)} / ${quantile(delays, 0.95).toFixed(0)} ms (${delays.length} OUTPUT events)`;

    // 3. Takeover: kill -9 the instance running a long job; time until the other's run restarts it.
    const { job } = await clientOf(a).submitJob({ provider: "paced", prompt: "takeover", maxTokens: 2000 }, auth);
    const runner = (await runnerOf(job!.id))!;
    const survivor = runner === a ? b : a;
    await waitUntil(async () => ((await clientOf(survivor).getJob({ jobId: job!.id }, auth)).job?.status === JobStatus.RUNNING ? true : undefined));
    const killedAt = performance.now();
    runner.child.kill("SIGKILL");
    await runner.exited;
    instances.splice(instances.indexOf(runner), 1);
    let restartedAfter = Number.NaN;
    for await (const { event } of clientOf(survivor).watchJob({ jobId: job!.id }, auth)) {
      if (event!.kind === JobEventKind.RESTARTED) {
        restartedAfter = performance.now() - killedAt;
        break;
      }
    }
    figures[`takeover after kill -9 (lease ${LEASE_MS} ms, renewed every ${LEASE_MS / 3} ms)`] = `${restartedAfter.toFixed(0)} ms to RESTARTED (the lease's rest, then poll and claim)`;
    await clientOf(survivor).cancelJob({ jobId: job!.id }, auth);
    await store.close();
    for (const instance of instances.splice(0)) await stop(instance);

    // 4. Round trips per job, counted in-process by the driver (the queue's collections only).
    figures["database round trips per job: queue / audit and usage"] = await roundTrips(database.uri, dbName, env, dataDir);
  } finally {
    for (const instance of instances) await stop(instance).catch(() => undefined);
    await fast.stop();
    await paced.stop();
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  return figures;
}

/** The share of a core the process used over `ms` (Linux: user and system ticks from /proc). */
async function idleCpu(instance: Instance, ms: number): Promise<number> {
  const ticks = async () => {
    const fields = (await readFile(`/proc/${instance.child.pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
    return Number(fields[11]) + Number(fields[12]);
  };
  const before = await ticks();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return (((await ticks()) - before) / 100 / ((performance.now() - started) / 1000)) * 100;
}

async function waitUntil<T>(check: () => Promise<T | undefined>, timeoutMs = 300_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error("benchmark condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Runs jobs on an in-process gateway whose driver counts every command, and divides by the jobs run. */
async function roundTrips(uri: string, dbName: string, env: Record<string, string>, dataDir: string): Promise<string> {
  const counted = { queue: 0, other: 0, on: false };
  const store = await openStore({
    uri,
    dbName,
    onCommand: (event) => {
      if (!counted.on) return;
      const collection = String((event.command as Record<string, unknown>)[event.commandName] ?? "");
      if (collection === "jobs" || collection.startsWith("job_")) counted.queue++;
      else counted.other++;
    },
  });
  const watcher = await openStore({ uri, dbName });
  const config = loadConfig({ ...env, PORTCULLIS_DATA_DIR: join(dataDir, "counted"), PORTCULLIS_JOB_CONCURRENCY: "8" });
  const gateway = await createGateway({
    store,
    keyring: await loadOrCreateKeyring(config.keyFile, config.suppliedKeys),
    config,
    logger: createLogger({ level: "silent", destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
  });
  let stopped = false;
  try {
    const owner = await store.db.collection("users").findOne({ username: "bench-jobs" });
    const ctx = {
      principal: {
        kind: "user" as const,
        id: String(owner!["_id"]),
        userId: String(owner!["_id"]),
        displayName: "bench-jobs",
        role: "owner" as const,
        permissions: new Set(["ai.jobs"]),
        method: "access_token" as const,
        sessionId: undefined,
      },
      client: { ip: "127.0.0.1", userAgent: "bench" },
      requestId: "bench",
    };
    const n = 100;
    const before = await watcher.db.collection("job_outcomes").countDocuments({});
    counted.on = true;
    await Promise.all(
      Array.from({ length: n }, (_, i) => gateway.jobSubmission.submit(ctx, { provider: "", model: "", prompt: `counted ${i}`, messages: [], systemPrompt: "", maxTokens: WORDS, idempotencyKey: "" })),
    );
    await waitUntil(async () => ((await watcher.db.collection("job_outcomes").countDocuments({})) >= before + n ? true : undefined), 300_000, 200);
    await gateway.stop();
    stopped = true;
    counted.on = false;
    return `${(counted.queue / n).toFixed(1)} / ${(counted.other / n).toFixed(1)} (one instance, ${n} jobs, pollers included)`;
  } finally {
    if (!stopped) await gateway.stop().catch(() => undefined);
    await store.close();
    await watcher.close();
  }
}
