import { randomUUID } from "node:crypto";
import { testSealer } from "../helpers/test-sealer.ts";
import { describe, expect, it, vi } from "vitest";
import { canonicalAuditContent, createAuditRecorder, type AuditEventInput, type AuditRecord, type AuditStore } from "../../src/domain/audit/audit-recorder.ts";
import { createAuditStore, type MongoAuditStore } from "../../src/store/audit-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

function auditStore(): MongoAuditStore {
  return createAuditStore(database.store, testSealer);
}

/** A real audit store whose next `failures` appends throw; `partial` writes the first half before throwing. */
function flakyStore(real: AuditStore, options: { failures: number; partial?: boolean }) {
  let remaining = options.failures;
  const appended: AuditRecord[][] = [];
  const store: AuditStore = {
    async append(records) {
      appended.push([...records]);
      if (remaining > 0) {
        remaining -= 1;
        if (options.partial) await real.append(records.slice(0, Math.ceil(records.length / 2)));
        throw new Error("transient write failure");
      }
      await real.append(records);
    },
  };
  return {
    store,
    appended,
    heal() {
      remaining = 0;
    },
  };
}

function event(requestId: string, extra: Partial<AuditEventInput> = {}): AuditEventInput {
  return { type: "test.event", outcome: "success", requestId, ...extra };
}

describe("audit recorder", () => {
  it("recordNow resolves only once the event is in the database, exactly as canonically built", async () => {
    const store = auditStore();
    const spy = flakyStore(store, { failures: 0 });
    const recorder = createAuditRecorder({ store: spy.store, now: () => new Date("2030-01-02T03:04:05.678Z") });
    const requestId = randomUUID();

    await recorder.recordNow({
      type: "auth.login",
      outcome: "denied",
      actor: { kind: "user", id: "u1", display: "ada@example.com" },
      target: { kind: "user", id: "u1" },
      ip: "127.0.0.1",
      userAgent: "vitest",
      requestId,
      method: "/portcullis.v1.AuthService/Login",
      reason: "bad password",
      metadata: { attempts: 3, locked: false },
    });

    const [stored] = await store.findByRequestId(requestId);
    expect(stored).toMatchObject({
      type: "auth.login",
      outcome: "denied",
      actor: { kind: "user", id: "u1", display: "ada@example.com" },
      target: { kind: "user", id: "u1" },
      ip: "127.0.0.1",
      userAgent: "vitest",
      method: "/portcullis.v1.AuthService/Login",
      reason: "bad password",
      metadata: { attempts: 3, locked: false },
      recorderSeq: 1,
    });
    expect(stored?.time.toISOString()).toBe("2030-01-02T03:04:05.678Z");
    expect(stored?._id).toBe(`${stored?.recorderId}:1`);
    // The later hash chain relies on this: what was built and what is read back serialize identically.
    const built = spy.appended[0]?.[0];
    expect(built).toBeDefined();
    expect(canonicalAuditContent(stored as AuditRecord)).toBe(canonicalAuditContent(built as AuditRecord));
    expect(canonicalAuditContent(built as AuditRecord)).toMatch(/^\{"actor":\{"display":"ada@example.com","id":"u1","kind":"user"\},"ip":/);
  });

  it("record() queues events and flush() writes them in order", async () => {
    const store = auditStore();
    const recorder = createAuditRecorder({ store, flushIntervalMs: 60_000 });
    const requestId = randomUUID();

    for (let i = 0; i < 3; i++) recorder.record(event(requestId, { metadata: { i } }));
    expect(await store.count({ requestId })).toBe(0);

    await recorder.flush();
    const stored = await store.findByRequestId(requestId);
    expect(stored.map((r) => r.metadata?.["i"])).toEqual([0, 1, 2]);
    expect(stored.map((r) => r.recorderSeq)).toEqual([1, 2, 3]);
  });

  it("writes queued events on its own: after the interval, or at once when a batch is full", async () => {
    const store = auditStore();
    const byTimer = createAuditRecorder({ store, flushIntervalMs: 50 });
    const timerRequest = randomUUID();
    byTimer.record(event(timerRequest));
    await vi.waitFor(async () => expect(await store.count({ requestId: timerRequest })).toBe(1), { timeout: 5000 });

    const byBatch = createAuditRecorder({ store, flushIntervalMs: 60_000, maxBatchSize: 5 });
    const batchRequest = randomUUID();
    for (let i = 0; i < 5; i++) byBatch.record(event(batchRequest));
    await vi.waitFor(async () => expect(await store.count({ requestId: batchRequest })).toBe(5), { timeout: 5000 });
  });

  it("redacts metadata under secret-looking keys but keeps identifiers", async () => {
    const store = auditStore();
    const recorder = createAuditRecorder({ store });
    const requestId = randomUUID();

    await recorder.recordNow(
      event(requestId, {
        metadata: {
          password: "hunter2",
          newPassword: "hunter3",
          apiKey: "pk_live_secret",
          "x-api-key": "pk_live_secret2",
          Authorization: "Bearer abc.def",
          sessionCookie: "sid=1",
          totp_code: 123456,
          backupCode: "1111-2222",
          clientSecret: "s3cr3t",
          refreshToken: "rt",
          keyId: "key_123",
          api_key_id: "key_456",
          count: 2,
          ok: true,
        },
      }),
    );

    const [stored] = await store.findByRequestId(requestId);
    expect(stored?.metadata).toEqual({
      password: "[redacted]",
      newPassword: "[redacted]",
      apiKey: "[redacted]",
      "x-api-key": "[redacted]",
      Authorization: "[redacted]",
      sessionCookie: "[redacted]",
      totp_code: "[redacted]",
      backupCode: "[redacted]",
      clientSecret: "[redacted]",
      refreshToken: "[redacted]",
      keyId: "key_123",
      api_key_id: "key_456",
      count: 2,
      ok: true,
    });
    const json = JSON.stringify(stored);
    for (const secret of ["hunter", "pk_live", "Bearer", "sid=1", "123456", "1111", "s3cr3t"]) expect(json).not.toContain(secret);
  });

  it("bounds long strings, strips control characters and caps metadata", async () => {
    const store = auditStore();
    const recorder = createAuditRecorder({ store });
    const requestId = randomUUID();
    const metadata: Record<string, number> = {};
    for (let i = 0; i < 40; i++) metadata[`m${i}`] = i;

    await recorder.recordNow(
      event(requestId, {
        reason: "x".repeat(10_000),
        userAgent: "evil\r\nFAKE LOG LINE\u001b[31m\u202eok",
        ip: "1".repeat(200),
        actor: { kind: "user", display: `${"😀".repeat(600)}` },
        metadata: { ...metadata },
      }),
    );
    recorder.record(event(requestId, { metadata: { "a.b": "dotted", $where: "dollar", note: "line\nbreak" } }));
    await recorder.flush();

    const [first, second] = await store.findByRequestId(requestId);
    expect(first?.reason).toHaveLength(512);
    expect(first?.reason?.endsWith("…")).toBe(true);
    expect(first?.userAgent).toBe("evilFAKE LOG LINE[31mok");
    expect(first?.ip).toHaveLength(64);
    expect(Array.from(first?.actor?.display ?? "")).toHaveLength(512); // cut between code points, not inside one
    expect(Object.keys(first?.metadata ?? {})).toHaveLength(32);
    expect(first?.metadata?.["_dropped"]).toBe(9);
    expect(second?.metadata).toEqual({ a_b: "dotted", _where: "dollar", note: "linebreak" });
  });

  it("rejects a malformed event type synchronously, from record and recordNow alike", () => {
    const recorder = createAuditRecorder({ store: auditStore() });
    for (const type of ["Auth.Login", "auth login", "auth-login", "", "a".repeat(65), "auth.login\n"]) {
      expect(() => recorder.record({ type, outcome: "success" })).toThrow(TypeError);
      expect(() => recorder.recordNow({ type, outcome: "success" })).toThrow(TypeError);
    }
    expect(() => recorder.record({ type: "auth.login", outcome: "maybe" as never })).toThrow(TypeError);
    expect(() => recorder.record({ type: "a".repeat(64), outcome: "success" })).not.toThrow();
  });

  it("keeps queued events through a failed write and writes each exactly once on retry", async () => {
    const store = auditStore();
    const flaky = flakyStore(store, { failures: 1 });
    const errors: unknown[] = [];
    const recorder = createAuditRecorder({ store: flaky.store, flushIntervalMs: 20, onError: (err) => errors.push(err) });
    const requestId = randomUUID();

    for (let i = 0; i < 3; i++) recorder.record(event(requestId));
    await vi.waitFor(async () => expect(await store.count({ requestId })).toBe(3), { timeout: 5000 });
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain("transient write failure");
    await recorder.flush();
    expect(await store.count({ requestId })).toBe(3);
  });

  it("retries a batch that was partly written without duplicating events", async () => {
    const store = auditStore();
    const flaky = flakyStore(store, { failures: 1, partial: true });
    const recorder = createAuditRecorder({ store: flaky.store, flushIntervalMs: 60_000, onError: () => undefined });
    const requestId = randomUUID();

    for (let i = 0; i < 6; i++) recorder.record(event(requestId));
    await expect(recorder.flush()).rejects.toThrow("transient write failure");
    expect(await store.count({ requestId })).toBe(3);

    await recorder.flush();
    const stored = await store.findByRequestId(requestId);
    expect(stored.map((r) => r.recorderSeq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("drops the oldest queued events when the queue is full, and says so", async () => {
    const store = auditStore();
    const flaky = flakyStore(store, { failures: Number.POSITIVE_INFINITY });
    const errors: unknown[] = [];
    const recorder = createAuditRecorder({ store: flaky.store, flushIntervalMs: 60_000, maxBatchSize: 10, maxQueueSize: 20, onError: (err) => errors.push(err) });
    const requestId = randomUUID();

    for (let i = 0; i < 25; i++) recorder.record(event(requestId));
    expect(errors.map(String).join("\n")).toContain("dropped the 1 oldest");
    flaky.heal();
    await recorder.flush();
    const stored = await store.findByRequestId(requestId);
    expect(stored.map((r) => r.recorderSeq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
  });

  it("recordNow rejects when the write fails", async () => {
    const flaky = flakyStore(auditStore(), { failures: 1 });
    const recorder = createAuditRecorder({ store: flaky.store });
    await expect(recorder.recordNow(event(randomUUID()))).rejects.toThrow("transient write failure");
  });
});
