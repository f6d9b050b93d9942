import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AiService, JobEventKind, type JobExportFormat, JobStatus, type Job } from "../../gen/portcullis/v1/ai_pb.js";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Code, failureOf, startAiGateway, startFakes, storeFakeCredentials, tokenFor } from "../helpers/ai-gateway.ts";
import { testDatabaseName } from "../helpers/database.ts";
import type { FakeKind, FakeProvider } from "../helpers/fake-providers.ts";
import { testPassword, type IdentityServer } from "../helpers/identity-server.ts";
import { assembledOutput, callsFor, eventually, finished, watchAll } from "../helpers/jobs.ts";

/**
 * AiService's job RPCs through two real gateway instances on one database: A runs jobs (one at a time,
 * so a held job keeps the next one queued), B only queues and serves them. The fake provider is a real
 * HTTP server speaking OpenAI's event stream.
 */
const dbName = testDatabaseName(import.meta.url);
let fakes: Record<FakeKind, FakeProvider>;
let a: IdentityServer;
let b: IdentityServer;
let alice: string;
let bob: string;
let carol: string;
let admin: string;

const on = (gw: IdentityServer, token: string) => gw.client(AiService, { token });
const first = <T>(stream: AsyncIterable<T>) => stream[Symbol.asyncIterator]().next();

beforeAll(async () => {
  fakes = await startFakes();
  const env = { PORTCULLIS_JOB_LEASE_MS: "3000", PORTCULLIS_JOB_RETRY_BASE_MS: "50", PORTCULLIS_JOB_POLL_MAX_MS: "100", PORTCULLIS_JOB_MAX_UNFINISHED_PER_USER: "3" };
  a = await startAiGateway(dbName, fakes, { ...env, PORTCULLIS_JOB_CONCURRENCY: "1" });
  b = await startAiGateway(dbName, fakes, { ...env, PORTCULLIS_JOB_CONCURRENCY: "0" });
  const owner = await tokenFor(a, "owner", "owner");
  await storeFakeCredentials(a, owner, fakes);
  admin = await tokenFor(a, "admin", "admin");
  alice = await tokenFor(a, "alice", "user");
  bob = await tokenFor(a, "bob", "user");
  carol = await tokenFor(a, "carol", "user");
});

afterAll(async () => {
  await b?.close();
  await a?.close();
  await fakes?.openai.close();
  await fakes?.anthropic.close();
});

/** Submits a job the fake holds after its first word, and waits until A runs it. */
async function heldJob(token: string, prompt: string): Promise<Job> {
  fakes.openai.enqueue({ kind: "answer", words: ["first", " second"], hold: true });
  const { job } = await on(b, token).submitJob({ prompt, maxTokens: 50 });
  await eventually(
    async () => ((await on(b, token).getJob({ jobId: job!.id })).job?.status === JobStatus.RUNNING && callsFor(fakes.openai, prompt) === 1 ? true : undefined),
    20_000,
    "the held job to run",
  );
  return job!;
}

describe("running and watching", () => {
  it("submitted on B, run on A, watched on B: every event in order once, and the output rule holds", async () => {
    fakes.openai.enqueue({ kind: "answer", words: ["Once", " upon", " a", " time"], delayMs: 30 });
    const { job } = await on(b, alice).submitJob({ prompt: "tell a story", maxTokens: 40 });
    expect(job?.status).toBe(JobStatus.QUEUED);
    expect(job?.lastEventSequence).toBe(1n);
    const events = await watchAll(on(b, alice), job!.id);
    expect(events.map((e) => Number(e.sequence))).toEqual(events.map((_, i) => i + 1));
    expect(events[0]!.kind).toBe(JobEventKind.QUEUED);
    expect(events[1]!.kind).toBe(JobEventKind.STARTED);
    expect(events.at(-1)!.kind).toBe(JobEventKind.COMPLETED);
    expect(events.at(-1)!.usage?.outputTokens).toBe(4);
    const done = await finished(on(b, alice), job!.id);
    expect(done).toMatchObject({ status: JobStatus.SUCCEEDED, outputText: "Once upon a time", progressPercent: 100, attempt: 1, provider: "openai", model: "gpt-fake" });
    expect(done.finishedAt).toBeDefined();
    expect(assembledOutput(events)).toBe(done.outputText);
    expect(done.lastEventSequence).toBe(events.at(-1)!.sequence);
  });

  it("resumes from every sequence of a finished job, from 0, and past the end", async () => {
    fakes.openai.enqueue({ kind: "answer", words: ["a", " b", " c", " d", " e", " f"], delayMs: 40 });
    const { job } = await on(a, alice).submitJob({ prompt: "resume me", maxTokens: 6 });
    const all = await watchAll(on(a, alice), job!.id);
    expect(all.filter((e) => e.kind === JobEventKind.PROGRESS).length).toBeGreaterThan(0);
    for (let from = 0; from <= all.length + 2; from++) {
      const got = await watchAll(on(from % 2 ? a : b, alice), job!.id, BigInt(from));
      expect(got.map((e) => e.sequence)).toEqual(all.slice(Math.max(from, 1) - 1).map((e) => e.sequence));
    }
    const huge = await watchAll(on(b, alice), job!.id, 2n ** 63n);
    expect(huge).toEqual([]);
  });

  it("a watcher resuming with last + 1 mid-run gets every later event once", async () => {
    fakes.openai.enqueue({ kind: "answer", words: Array.from({ length: 12 }, (_, i) => `w${i} `), delayMs: 60 });
    const { job } = await on(b, alice).submitJob({ prompt: "long enough to drop", maxTokens: 40 });
    const first: bigint[] = [];
    const abort = new AbortController();
    try {
      for await (const { event } of on(b, alice).watchJob({ jobId: job!.id }, { signal: abort.signal })) {
        first.push(event!.sequence);
        if (event!.kind === JobEventKind.OUTPUT) break;
      }
    } finally {
      abort.abort();
    }
    const rest = await watchAll(on(a, alice), job!.id, first.at(-1)! + 1n);
    const sequences = [...first, ...rest.map((e) => e.sequence)];
    expect(sequences).toEqual(sequences.map((_, i) => BigInt(i + 1)));
    expect(rest.at(-1)!.kind).toBe(JobEventKind.COMPLETED);
  });

  it("a provider failure is retried with backoff, then the job fails with the reason", async () => {
    fakes.openai.enqueue({ kind: "status", status: 500 }, { kind: "status", status: 500 }, { kind: "status", status: 500 });
    fakes.openai.enqueue({ kind: "status", status: 500 }, { kind: "status", status: 500 }, { kind: "status", status: 500 });
    fakes.openai.enqueue({ kind: "answer", words: ["recovered"] });
    const { job } = await on(b, alice).submitJob({ prompt: "flaky", maxTokens: 5 });
    const events = await watchAll(on(b, alice), job!.id);
    const restarted = events.filter((e) => e.kind === JobEventKind.RESTARTED);
    expect(restarted).toHaveLength(2);
    expect(restarted[0]!.errorMessage).toMatch(/run 1 failed: provider openai failed \(HTTP 500\)/);
    expect(restarted.map((e) => e.attempt)).toEqual([2, 3]);
    expect((await finished(on(b, alice), job!.id)).outputText).toBe("recovered");

    for (let i = 0; i < 9; i++) fakes.openai.enqueue({ kind: "status", status: 503 });
    const failing = (await on(b, alice).submitJob({ prompt: "always down", maxTokens: 5 })).job!;
    const end = await finished(on(b, alice), failing.id);
    expect(end.status).toBe(JobStatus.FAILED);
    expect(end.errorMessage).toMatch(/provider openai failed \(HTTP 503\) \(after 3 runs\)/);
    expect((await watchAll(on(b, alice), failing.id)).at(-1)).toMatchObject({ kind: JobEventKind.FAILED, errorMessage: end.errorMessage });

    const permanent = (await on(b, alice).submitJob({ prompt: "unknown upstream model", maxTokens: 5 })).job!;
    fakes.openai.enqueue({ kind: "status", status: 404 });
    const refused = await finished(on(b, alice), permanent.id);
    expect(refused.status).toBe(JobStatus.FAILED);
    expect(refused.attempt).toBe(1);
  });
});

describe("cancelling", () => {
  it("cancels a queued job (never sent to the provider) and a running one on the other instance (the upstream request is aborted)", async () => {
    const running = await heldJob(alice, "held for cancel");
    const queued = (await on(b, alice).submitJob({ prompt: "queued for cancel", maxTokens: 5 })).job!;
    const cancelledQueued = (await on(b, alice).cancelJob({ jobId: queued.id })).job!;
    expect(cancelledQueued.status).toBe(JobStatus.CANCELLED);
    expect((await watchAll(on(b, alice), queued.id)).map((e) => e.kind)).toEqual([JobEventKind.QUEUED, JobEventKind.CANCELLED]);

    const disconnected = fakes.openai.nextDisconnect();
    const cancelled = (await on(b, alice).cancelJob({ jobId: running.id })).job!;
    expect(cancelled.status).toBe(JobStatus.CANCELLED);
    await disconnected; // A saw the cancellation decided on B and aborted its provider call
    const events = await watchAll(on(b, alice), running.id);
    expect(events.at(-1)).toMatchObject({ kind: JobEventKind.CANCELLED });
    const end = await eventually(async () => {
      const { job } = await on(a, alice).getJob({ jobId: running.id });
      return job?.finishedAt && job.lastEventSequence === events.at(-1)!.sequence ? job : undefined;
    });
    expect(end.outputText).toBe(assembledOutput(events));
    expect(end.outputText).toBe("first");
    expect(callsFor(fakes.openai, "queued for cancel")).toBe(0);

    const again = await failureOf(on(b, alice).cancelJob({ jobId: running.id }));
    expect(again.code).toBe(Code.FailedPrecondition);
    await eventually(async () => ((await a.auditEvents("job.cancel")).length >= 2 ? true : undefined));
  });

  it("another user's job is NOT_FOUND to cancel; an admin sees it but may not cancel it", async () => {
    const job = (await on(b, alice).submitJob({ prompt: "mine", maxTokens: 3 })).job!;
    expect((await failureOf(on(b, bob).cancelJob({ jobId: job.id }))).code).toBe(Code.NotFound);
    expect((await failureOf(on(b, admin).cancelJob({ jobId: job.id }))).code).toBe(Code.PermissionDenied);
    await finished(on(b, alice), job.id);
  });
});

describe("ownership and listing", () => {
  it("users see only their own jobs; users.manage reads anyone's, audited", async () => {
    const job = (await on(b, bob).submitJob({ prompt: "bob's", maxTokens: 3 })).job!;
    expect((await failureOf(on(b, alice).getJob({ jobId: job.id }))).code).toBe(Code.NotFound);
    expect((await failureOf(first(on(b, alice).watchJob({ jobId: job.id })))).code).toBe(Code.NotFound);
    expect((await on(b, admin).getJob({ jobId: job.id })).job?.id).toBe(job.id);
    const mine = (await on(b, alice).listJobs({})).jobs;
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((j) => j.ownerUserId === mine[0]!.ownerUserId)).toBe(true);
    expect(mine.some((j) => j.id === job.id)).toBe(false);
    expect((await failureOf(on(b, alice).listJobs({ userId: job.ownerUserId }))).code).toBe(Code.PermissionDenied);
    expect((await failureOf(on(b, alice).listJobs({ allUsers: true }))).code).toBe(Code.PermissionDenied);
    expect((await on(b, admin).listJobs({ userId: job.ownerUserId })).jobs.map((j) => j.id)).toContain(job.id);
    const everyone = (await on(b, admin).listJobs({ allUsers: true, pageSize: 500 })).jobs;
    expect(new Set(everyone.map((j) => j.ownerUserId)).size).toBeGreaterThan(1);
    expect(everyone.map((j) => j.createdAt!.seconds)).toEqual([...everyone.map((j) => j.createdAt!.seconds)].sort((x, y) => Number(y - x)));
    await eventually(async () => ((await a.auditEvents("job.read")).length > 0 && (await a.auditEvents("job.list")).length >= 2 ? true : undefined));
    await finished(on(b, bob), job.id);
  });

  it("pages newest first with tokens bound to the caller and the filter", async () => {
    const dave = await tokenFor(a, "dave", "user");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await on(b, dave).submitJob({ provider: "local", prompt: `page ${i}` })).job!.id);
      await finished(on(b, dave), ids.at(-1)!);
    }
    const seen: string[] = [];
    let token = "";
    do {
      const page = await on(b, dave).listJobs({ pageSize: 2, pageToken: token });
      seen.push(...page.jobs.map((j) => j.id));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual([...ids].reverse());
    const first = await on(b, dave).listJobs({ pageSize: 2 });
    expect((await failureOf(on(b, dave).listJobs({ pageSize: 2, pageToken: first.nextPageToken, status: JobStatus.SUCCEEDED }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(on(b, bob).listJobs({ pageSize: 2, pageToken: first.nextPageToken }))).code).toBe(Code.InvalidArgument);
    expect((await on(b, dave).listJobs({ status: JobStatus.SUCCEEDED, pageSize: 1_000_000_000 })).jobs).toHaveLength(5);
    expect((await on(b, dave).listJobs({ status: JobStatus.FAILED })).jobs).toHaveLength(0);
  });
});

describe("limits and idempotency", () => {
  it("caps unfinished jobs per user exactly, even when submissions race", async () => {
    const held = await heldJob(alice, "keeps A busy for the cap");
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => on(i % 2 ? a : b, carol).submitJob({ prompt: `cap ${i}`, maxTokens: 3 })));
    const accepted = results.filter((r) => r.status === "fulfilled");
    expect(accepted).toHaveLength(3);
    for (const r of results) if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.ResourceExhausted);
    const first = (accepted[0] as PromiseFulfilledResult<{ job?: Job }>).value.job!;
    await on(b, carol).cancelJob({ jobId: first.id });
    const next = (await on(b, carol).submitJob({ prompt: "after a cancel", maxTokens: 3 })).job!;
    for (const r of accepted)
      await on(b, carol)
        .cancelJob({ jobId: (r as PromiseFulfilledResult<{ job?: Job }>).value.job!.id })
        .catch(() => undefined);
    await on(b, carol).cancelJob({ jobId: next.id });
    await on(b, alice).cancelJob({ jobId: held.id });
  });

  it("the same key and parameters give the same job; other parameters are ALREADY_EXISTS; racing submissions make one job", async () => {
    const first = await on(b, alice).submitJob({ provider: "local", prompt: "idempotent", idempotencyKey: "key-1" });
    const again = await on(a, alice).submitJob({ provider: "local", prompt: "idempotent", idempotencyKey: "key-1" });
    expect(first.deduplicated).toBe(false);
    expect(again).toMatchObject({ deduplicated: true, job: { id: first.job!.id, idempotencyKey: "key-1" } });
    expect((await failureOf(on(b, alice).submitJob({ provider: "local", prompt: "different", idempotencyKey: "key-1" }))).code).toBe(Code.AlreadyExists);
    // Keys are per user: bob's "key-1" is his own.
    expect((await on(b, bob).submitJob({ provider: "local", prompt: "different", idempotencyKey: "key-1" })).deduplicated).toBe(false);

    const racing = await Promise.all(Array.from({ length: 8 }, (_, i) => on(i % 2 ? a : b, alice).submitJob({ provider: "local", prompt: "raced", idempotencyKey: "race-key" })));
    expect(new Set(racing.map((r) => r.job!.id)).size).toBe(1);
    expect(racing.filter((r) => !r.deduplicated)).toHaveLength(1);
    const listed = (await on(b, alice).listJobs({ pageSize: 500 })).jobs.filter((j) => j.idempotencyKey === "race-key");
    expect(listed).toHaveLength(1);
    // Alice's unfinished jobs count against her cap (3) in the tests after this one: let them end here.
    for (const id of [first.job!.id, racing[0]!.job!.id]) await finished(on(b, alice), id);
  });
});

describe("bad input", () => {
  it("answers malformed ids, keys, page sizes, tokens and formats with the right codes", async () => {
    const ai = on(b, alice);
    for (const jobId of ["", "x", "../etc", "a".repeat(5000), "00000000-0000-0000-0000-000000000000.zz"]) {
      expect((await failureOf(ai.getJob({ jobId }))).code).toBe(Code.InvalidArgument);
      expect((await failureOf(ai.cancelJob({ jobId }))).code).toBe(Code.InvalidArgument);
      expect((await failureOf(first(ai.watchJob({ jobId })))).code).toBe(Code.InvalidArgument);
    }
    const mine = (await ai.listJobs({ pageSize: 1 })).jobs[0]!;
    const unknown = `${mine.ownerUserId}.000000000000000000000000`;
    expect((await failureOf(ai.getJob({ jobId: unknown }))).code).toBe(Code.NotFound);
    expect((await failureOf(ai.submitJob({ prompt: "x", idempotencyKey: "k".repeat(129) }))).code).toBe(Code.InvalidArgument);
    const longKey = (await ai.submitJob({ provider: "local", prompt: "x", idempotencyKey: "k".repeat(128) })).job!;
    expect(longKey.idempotencyKey).toHaveLength(128);
    await finished(ai, longKey.id); // it counts against alice's cap of unfinished jobs until it ends
    expect((await failureOf(ai.submitJob({ prompt: "" }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(ai.submitJob({ prompt: "x", temperature: 3 }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(ai.submitJob({ prompt: "x", provider: "nope" }))).code).toBe(Code.NotFound);
    expect((await failureOf(ai.listJobs({ pageSize: -1 }))).code).toBe(Code.InvalidArgument);
    expect((await ai.listJobs({ pageSize: 1_000_000_000 })).jobs.length).toBeLessThanOrEqual(500);
    for (const pageToken of ["forged", "eyJpIjoieCIsInQiOjB9.AAAA", "a.b.c", "x".repeat(600)]) expect((await failureOf(ai.listJobs({ pageToken }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(ai.listJobs({ status: 42 as JobStatus }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(ai.listJobs({ userId: "not-a-user" }))).code).toBe(Code.PermissionDenied);
    expect((await failureOf(on(b, admin).listJobs({ userId: "not-a-user" }))).code).toBe(Code.InvalidArgument);
    for (const format of [0, 99]) expect((await failureOf(first(ai.exportJobs({ format })))).code).toBe(Code.InvalidArgument);
    const inverted = { startTime: { seconds: 2_000_000_000n, nanos: 0 }, endTime: { seconds: 1_000_000_000n, nanos: 0 } };
    expect((await failureOf(first(ai.exportJobs({ format: 1, created: inverted })))).code).toBe(Code.InvalidArgument);
  });
});

describe("the same over every protocol", () => {
  it.each(["grpc", "grpc-web", "connect"] as const)("%s: a job's whole life, bad input and another user's job", async (protocol) => {
    const mine = b.client(AiService, { token: alice, protocol });
    const { job } = await mine.submitJob({ provider: "local", prompt: `over ${protocol}` });
    const events = [];
    for await (const { event } of mine.watchJob({ jobId: job!.id })) events.push(event!);
    expect(events.at(-1)?.kind).toBe(JobEventKind.COMPLETED);
    // The record follows the events (its projection may lag the terminal event by a moment).
    expect(assembledOutput(events)).toBe((await finished(mine, job!.id)).outputText);
    expect((await failureOf(mine.getJob({ jobId: "../etc" }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(first(mine.watchJob({ jobId: "x" })))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(mine.listJobs({ pageSize: -1 }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(mine.listJobs({ pageToken: "forged" }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(first(mine.exportJobs({ format: 99 as JobExportFormat })))).code).toBe(Code.InvalidArgument);
    const theirs = b.client(AiService, { token: bob, protocol });
    expect((await failureOf(theirs.getJob({ jobId: job!.id }))).code).toBe(Code.NotFound);
    expect((await failureOf(theirs.cancelJob({ jobId: job!.id }))).code).toBe(Code.NotFound);
    expect((await failureOf(first(theirs.watchJob({ jobId: job!.id })))).code).toBe(Code.NotFound);
  });
});

describe("revocation", () => {
  it("a WatchJob stream ends with UNAUTHENTICATED when its session is revoked", async () => {
    const held = await heldJob(alice, "watched while revoked");
    const session = (await a.client(AuthService).login({ username: "alice", password: testPassword("alice") })).accessToken;
    const stream = on(b, session).watchJob({ jobId: held.id })[Symbol.asyncIterator]();
    expect((await stream.next()).done).toBe(false);
    await a.client(AuthService, { token: session }).logout({});
    const ended = await failureOf(async () => {
      for (;;) if ((await stream.next()).done) return;
    });
    expect(ended.code).toBe(Code.Unauthenticated);
    await on(b, alice).cancelJob({ jobId: held.id });
  });

  it("an API key's job runs as the key: its spent budget fails the job when it starts", async () => {
    const keys = a.client(ApiKeyService, { token: bob });
    const { secret } = await keys.createApiKey({ name: "job-key", scopes: ["ai.jobs", "ai.query"], dailyTokenBudget: 10n });
    fakes.openai.enqueue({ kind: "answer", words: Array.from({ length: 10 }, () => "w "), usage: { input: 5, output: 10 } });
    const spend = (await on(b, secret).submitJob({ prompt: "spend it", maxTokens: 10 })).job!;
    expect(spend.apiKeyId).not.toBe("");
    expect((await finished(on(b, secret), spend.id)).status).toBe(JobStatus.SUCCEEDED);
    const refused = (await on(b, secret).submitJob({ prompt: "over budget", maxTokens: 10 })).job!;
    const end = await finished(on(b, secret), refused.id);
    expect(end.status).toBe(JobStatus.FAILED);
    expect(end.errorMessage).toMatch(/daily token budget \(10\) is spent/);
    expect(callsFor(fakes.openai, "over budget")).toBe(0);
  });
});
