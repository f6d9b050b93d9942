import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, type WatchAuditEventsResponse } from "../../gen/portcullis/v1/audit_pb.js";
import { AuthService, LogoutScope } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { expectCode, sharedKeyFile, userWithToken } from "../helpers/audit.ts";
import { startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

/** WatchAuditEvents on instance B while events are written on A (and on B), over the real gRPC transport. */
describe("WatchAuditEvents", () => {
  let a: IdentityServer;
  let b: IdentityServer;
  let ownerToken = "";
  let adminToken = "";

  beforeAll(async () => {
    const dbName = testDatabaseName(import.meta.url);
    const keyFile = await sharedKeyFile();
    const env = { PORTCULLIS_AUDIT_WATCH_HEARTBEAT_SECONDS: "1" };
    a = await startIdentityServer({ dbName, keyFile, env });
    b = await startIdentityServer({ dbName, keyFile, env });
    ownerToken = (await userWithToken(a, "watch-owner", "owner")).token;
    adminToken = (await userWithToken(a, "watch-admin", "admin")).token;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  /** Opens a watch on B; `next()` resolves with the next message (or rejects with the stream's error). */
  const open = (request: Parameters<ReturnType<typeof b.client<typeof AuditService>>["watchAuditEvents"]>[0], token = adminToken) => {
    const controller = new AbortController();
    const stream = b.client(AuditService, { token }).watchAuditEvents(request, { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    return {
      next: async (): Promise<WatchAuditEventsResponse> => {
        const item = await iterator.next();
        if (item.done) throw new Error("stream ended");
        return item.value;
      },
      /** The next event, skipping heartbeats. */
      nextEvent: async () => {
        for (;;) {
          const message = await iterator.next();
          if (message.done) throw new Error("stream ended");
          if (message.value.payload.case === "event") return message.value.payload.value;
        }
      },
      iterator,
      close: () => controller.abort(),
    };
  };

  it("delivers events written on another instance, filtered, typically well under 250 ms", async () => {
    const watch = open({ filter: { types: ["watch.live"] } });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100)); // let the watch reach the live tail
      const delays: number[] = [];
      for (let i = 0; i < 10; i++) {
        a.audit.record({ type: "watch.noise", outcome: "success" });
        const sent = Date.now();
        await a.audit.recordNow({ type: "watch.live", outcome: "success", metadata: { i } });
        const event = await watch.nextEvent();
        delays.push(Date.now() - sent);
        expect(event.type).toBe("watch.live");
        expect(event.metadata["i"]).toBe(String(i));
      }
      delays.sort((x, y) => x - y);
      expect(delays[Math.floor(delays.length / 2)]).toBeLessThan(250);
    } finally {
      watch.close();
    }
  });

  it("resumes after a sequence with nothing lost or repeated, and sends heartbeats when idle", async () => {
    for (let i = 0; i < 5; i++) await a.audit.recordNow({ type: "watch.resume", outcome: "success", metadata: { i } });
    const first = open({ filter: { types: ["watch.resume"] }, afterSequence: 0n });
    const got: Array<{ seq: bigint; i: string }> = [];
    for (let i = 0; i < 3; i++) {
      const e = await first.nextEvent();
      got.push({ seq: e.sequence, i: e.metadata["i"]! });
    }
    first.close();
    // Written while nobody watches.
    for (let i = 5; i < 8; i++) await b.audit.recordNow({ type: "watch.resume", outcome: "success", metadata: { i } });
    const resumed = open({ filter: { types: ["watch.resume"] }, afterSequence: got.at(-1)!.seq });
    try {
      for (let i = 3; i < 8; i++) {
        const e = await resumed.nextEvent();
        got.push({ seq: e.sequence, i: e.metadata["i"]! });
      }
      expect(got.map((g) => g.i)).toEqual(["0", "1", "2", "3", "4", "5", "6", "7"]);
      expect(new Set(got.map((g) => g.seq)).size).toBe(8);
      // Idle now: a heartbeat within the configured second (plus slack), carrying the head.
      const message = await resumed.next();
      expect(message.payload.case).toBe("heartbeat");
      if (message.payload.case === "heartbeat") expect(message.payload.value.headSequence).toBeGreaterThanOrEqual(got.at(-1)!.seq);
    } finally {
      resumed.close();
    }
  });

  it("refuses a resume point beyond the head (OUT_OF_RANGE), bad filters, no credentials, and users", async () => {
    const beyond = open({ afterSequence: 10_000_000n });
    await expect(beyond.next()).rejects.toSatisfy((e: unknown) => ConnectError.from(e).code === Code.OutOfRange);
    const badFilter = open({ filter: { actorId: "$ne" } });
    await expect(badFilter.next()).rejects.toSatisfy((e: unknown) => ConnectError.from(e).code === Code.InvalidArgument);
    const anonymous = b.client(AuditService).watchAuditEvents({});
    await expectCode(
      (async () => {
        for await (const _ of anonymous) break;
      })(),
      Code.Unauthenticated,
    );
    const user = await userWithToken(a, "watch-user", "user");
    const denied = b.client(AuditService, { token: user.token }).watchAuditEvents({});
    await expectCode(
      (async () => {
        for await (const _ of denied) break;
      })(),
      Code.PermissionDenied,
    );
  });

  /** Opens a watch with `token`, runs `revoke` on A, and measures how long B's stream lives on. */
  const endsAfter = async (token: string, revoke: () => Promise<unknown>) => {
    const watch = open({}, token);
    await watch.next(); // flowing (a heartbeat at the latest)
    await revoke();
    const revokedAt = Date.now();
    try {
      for (;;) await watch.next();
    } catch (error) {
      return { code: ConnectError.from(error).code, afterMs: Date.now() - revokedAt };
    } finally {
      watch.close();
    }
  };

  it("ends with UNAUTHENTICATED within 1 s of the caller's session being revoked", async () => {
    const auditor = await userWithToken(a, "watch-auditor-1", "admin");
    const end = await endsAfter(auditor.token, () => a.client(AuthService, { token: auditor.token }).logout({ scope: LogoutScope.CURRENT_SESSION }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);
  });

  it("ends with UNAUTHENTICATED within 1 s of the user being disabled", async () => {
    const auditor = await userWithToken(a, "watch-auditor-2", "admin");
    const end = await endsAfter(auditor.token, () => a.client(AuthService, { token: ownerToken }).updateUser({ userId: auditor.userId, disabled: true }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);
  });
});
