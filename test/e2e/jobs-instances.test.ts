import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createPortcullisTransport } from "../../clients/connect-node.ts";
import { AiService, JobEventKind, JobStatus, type JobEvent } from "../../gen/portcullis/v1/ai_pb.js";
import { providersFor, startAiGateway, startFakes, storeFakeCredentials, tokenFor } from "../helpers/ai-gateway.ts";
import { testDatabaseName } from "../helpers/database.ts";
import type { FakeKind, FakeProvider } from "../helpers/fake-providers.ts";
import { startGatewayChild, type GatewayChild } from "../helpers/gateway-process.ts";
import { sharedTestKey, type IdentityServer } from "../helpers/identity-server.ts";
import { assembledOutput, callsFor, eventually, finished } from "../helpers/jobs.ts";
import { captureSecrets, saveLog } from "../helpers/secret-capture.ts";

/**
 * Jobs across gateway processes (`node src/main.ts`, as `npm start` runs it) sharing the real database:
 * exactly-once runs, a hand-over at SIGTERM, and a takeover after kill -9. The fake provider runs in
 * this process and counts the calls per job; an in-process gateway that runs no jobs creates the users
 * and watches from the side, so its stream survives the deaths of the others.
 */
const dbName = testDatabaseName(import.meta.url);
let fakes: Record<FakeKind, FakeProvider>;
let side: IdentityServer;
let token: string;
let dataDir: string;
const children: GatewayChild[] = [];

async function gateway(env: Record<string, string>): Promise<GatewayChild> {
  const child = await startGatewayChild({
    MONGODB_URI: inject("mongodbUri"),
    PORTCULLIS_DB_NAME: dbName,
    PORTCULLIS_DATA_DIR: join(dataDir, `instance-${children.length}`),
    PORTCULLIS_API_KEY_PEPPER: sharedTestKey(dbName, "pepper"),
    PORTCULLIS_ENCRYPTION_KEY: sharedTestKey(dbName, "encryption"),
    PORTCULLIS_AI_PROVIDERS: providersFor(fakes),
    PORTCULLIS_RATE_LIMIT_DEFAULT: "1000000",
    PORTCULLIS_RATE_LIMIT_EXPENSIVE: "1000000",
    PORTCULLIS_JOB_POLL_MAX_MS: "200",
    PORTCULLIS_JOB_RETRY_BASE_MS: "50",
    ...env,
  });
  children.push(child);
  return child;
}

const ai = (target: { baseUrl: string }, as = token) => createClient(AiService, createPortcullisTransport({ baseUrl: target.baseUrl, protocol: "grpc", token: as, interceptors: [captureSecrets] }));

/** Follows a job's events on the side gateway, from the start, until it ends. */
function follow(jobId: string, as = token): { events: JobEvent[]; done: Promise<void> } {
  const events: JobEvent[] = [];
  const done = (async () => {
    for await (const { event } of side.client(AiService, { token: as }).watchJob({ jobId })) events.push(event!);
  })();
  return { events, done };
}

/** A finished job's events, replayed from the side gateway. */
async function replay(jobId: string, as = token): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const { event } of side.client(AiService, { token: as }).watchJob({ jobId })) events.push(event!);
  return events;
}

async function stopAll() {
  for (const child of children.splice(0)) {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGTERM");
    await child.exited;
    await saveLog(`${dbName}-${child.port}`, child.log());
  }
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "portcullis-jobs-instances-"));
  fakes = await startFakes();
  side = await startAiGateway(dbName, fakes, { PORTCULLIS_JOB_CONCURRENCY: "0", PORTCULLIS_RATE_LIMIT_DEFAULT: "1000000" });
  await storeFakeCredentials(side, await tokenFor(side, "owner", "owner"), fakes);
  token = await tokenFor(side, "alice", "user");
});

afterAll(async () => {
  await stopAll();
  await side?.close();
  await fakes?.openai.close();
  await fakes?.anthropic.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("jobs across processes", () => {
  it("two instances and 50 queued jobs: each runs exactly once", async () => {
    const [p1, p2] = await Promise.all([gateway({ PORTCULLIS_JOB_CONCURRENCY: "4" }), gateway({ PORTCULLIS_JOB_CONCURRENCY: "4" })]);
    // Each answer takes 300 ms, so one instance (4 at a time) needs ≥ 3.75 s for all 50: however fast
    // it is on a given machine, the other has seconds to claim its share.
    fakes.openai.enqueue(...Array.from({ length: 50 }, () => ({ kind: "answer" as const, words: ["one", " two", " three"], delayMs: 100 })));
    const ids = await Promise.all(Array.from({ length: 50 }, async (_, i) => (await ai(i % 2 ? p1 : p2).submitJob({ prompt: `exactly once #${i}#`, maxTokens: 10 })).job!.id));
    // Which instance claims a job is recorded while it runs; both must take part.
    const runners = new Set<unknown>();
    const jobs = await eventually(
      async () => {
        for (const claim of await side.store.db.collection("job_claims").find({}).toArray()) runners.add(claim["instanceId"]);
        const { jobs } = await ai(p1).listJobs({ pageSize: 500 });
        return ids.every((id) => jobs.find((j) => j.id === id)?.status === JobStatus.SUCCEEDED) ? jobs : undefined;
      },
      60_000,
      "50 jobs to finish",
      100,
    );
    for (let i = 0; i < 50; i++) expect(callsFor(fakes.openai, `exactly once #${i}#`)).toBe(1);
    // A job runs again only after a run of it failed (on a loaded machine, a database write can fail
    // before the provider is called, and the retry is right); never after a lease expiry or a hand-over,
    // which no instance had reason for here. Each rerun's RESTARTED events say why; they are printed.
    const rerun = jobs.filter((j) => ids.includes(j.id) && j.attempt !== 1);
    const reasons = (await Promise.all(rerun.map(async (j) => (await replay(j.id)).filter((e) => e.kind === JobEventKind.RESTARTED).map((e) => e.errorMessage)))).flat();
    if (reasons.length > 0) console.warn("jobs run again after a failed run:", reasons);
    for (const reason of reasons) expect(reason).toMatch(/^run \d+ failed: /);
    expect(runners.size).toBe(2);
    await stopAll();
  });

  it("SIGTERM during a running job hands it to another instance at once; with time enough, the job finishes first", async () => {
    // A lease of a minute: a takeover by lease expiry could not happen within this test.
    const first = await gateway({ PORTCULLIS_JOB_LEASE_MS: "60000", PORTCULLIS_SHUTDOWN_TIMEOUT_MS: "300" });
    fakes.openai.enqueue({ kind: "answer", words: ["never", " finished"], hold: true }, { kind: "answer", words: ["handed", " over"] });
    const job = (await ai(first).submitJob({ prompt: "hand me over", maxTokens: 10 })).job!;
    const watched = follow(job.id);
    await eventually(() => (watched.events.some((e) => e.kind === JobEventKind.OUTPUT) ? true : undefined));
    const second = await gateway({ PORTCULLIS_JOB_LEASE_MS: "60000" });
    const disconnected = fakes.openai.nextDisconnect();
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    await disconnected;
    await watched.done;
    const done = await finished(ai(second), job.id);
    expect(done).toMatchObject({ status: JobStatus.SUCCEEDED, outputText: "handed over", attempt: 2 });
    const restarted = watched.events.find((e) => e.kind === JobEventKind.RESTARTED);
    expect(restarted?.errorMessage).toMatch(/shut down/);
    expect(assembledOutput(watched.events)).toBe(done.outputText);
    expect(watched.events.filter((e) => e.kind === JobEventKind.COMPLETED)).toHaveLength(1);

    // The second instance has the default grace (10 s): its job finishes before it exits.
    fakes.openai.enqueue({ kind: "answer", words: Array.from({ length: 8 }, (_, i) => `w${i} `), delayMs: 100 });
    const graceful = (await ai(second).submitJob({ prompt: "finish before exit", maxTokens: 10 })).job!;
    await eventually(async () => ((await ai(second).getJob({ jobId: graceful.id })).job?.status === JobStatus.RUNNING ? true : undefined));
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    const end = (await side.client(AiService, { token }).getJob({ jobId: graceful.id })).job!;
    expect(end).toMatchObject({ status: JobStatus.SUCCEEDED, attempt: 1 });
    expect(end.outputText).toBe(Array.from({ length: 8 }, (_, i) => `w${i} `).join(""));
    await stopAll();
  });

  it("kill -9 of the instance running a job mid-stream: another completes it after the lease expires, once", async () => {
    const lease = { PORTCULLIS_JOB_LEASE_MS: "1500" };
    const kim = await tokenFor(side, "kim", "user");
    const doomed = await gateway(lease);
    const words = Array.from({ length: 20 }, (_, i) => `t${i} `);
    fakes.openai.enqueue({ kind: "answer", words: ["lost", " words"], hold: true }, { kind: "answer", words, delayMs: 20, usage: { input: 3, output: 20 } });
    const job = (await ai(doomed, kim).submitJob({ prompt: "survive a crash", maxTokens: 20 })).job!;
    const watched = follow(job.id, kim);
    await eventually(() => (watched.events.some((e) => e.kind === JobEventKind.OUTPUT) ? true : undefined));
    const survivor = await gateway(lease);
    doomed.child.kill("SIGKILL");
    await doomed.exited;
    await watched.done;
    const done = await finished(ai(survivor, kim), job.id);
    expect(done).toMatchObject({ status: JobStatus.SUCCEEDED, outputText: words.join(""), attempt: 2, usage: { inputTokens: 3, outputTokens: 20 } });
    const kinds = watched.events.map((e) => e.kind);
    expect(kinds.filter((k) => k === JobEventKind.COMPLETED)).toHaveLength(1);
    expect(kinds.at(-1)).toBe(JobEventKind.COMPLETED);
    expect(watched.events.find((e) => e.kind === JobEventKind.RESTARTED)?.errorMessage).toMatch(/lease expired/);
    expect(watched.events.map((e) => Number(e.sequence))).toEqual(watched.events.map((_, i) => i + 1));
    expect(assembledOutput(watched.events)).toBe(done.outputText);
    expect(callsFor(fakes.openai, "survive a crash")).toBe(2);
    // Usage is counted once: the killed run's never reached the ledger; the survivor's is written at its stop.
    await stopAll();
    const userId = done.ownerUserId;
    const usage = await side.store.db
      .collection("ai_usage")
      .find({ subject: `user:${userId}` })
      .toArray();
    expect(usage.reduce((sum, doc) => sum + Number(doc["queries"] ?? 0), 0)).toBe(1);
    expect(usage.reduce((sum, doc) => sum + Number(doc["outputTokens"] ?? 0), 0)).toBe(20);
  });
});
