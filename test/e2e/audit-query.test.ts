import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuditOutcome, AuditService, type AuditEventFilterSchema } from "../../gen/portcullis/v1/audit_pb.js";
import { SortOrder } from "../../gen/portcullis/v1/common_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { expectCode, userWithToken } from "../helpers/audit.ts";
import { startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

describe("QueryAuditEvents and ListMyAuditEvents", () => {
  let gw: IdentityServer;
  let admin: Awaited<ReturnType<typeof userWithToken>>;
  let alice: Awaited<ReturnType<typeof userWithToken>>;
  let bob: Awaited<ReturnType<typeof userWithToken>>;
  const audit = () => gw.client(AuditService, { token: admin.token });
  const startedAt = new Date(Date.now() - 1000);

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    admin = await userWithToken(gw, "query-admin", "admin");
    alice = await userWithToken(gw, "query-alice", "user");
    bob = await userWithToken(gw, "query-bob", "user");
    for (let i = 0; i < 30; i++) {
      await gw.audit.recordNow({
        type: i % 2 === 0 ? "test.even" : "test.odd.sub",
        outcome: i % 3 === 0 ? "denied" : "success",
        actor: { kind: "user", id: i < 10 ? alice.userId : "someone-else" },
        target: { kind: "user", id: i >= 25 ? bob.userId : "target-x" },
        ip: i % 5 === 0 ? "203.0.113.7" : "198.51.100.1",
        method: "/portcullis.v1.TestService/Do",
        requestId: `req-${i}`,
        metadata: { i },
      });
    }
  });
  afterAll(async () => {
    await gw?.close();
  });

  const all = async (filter: MessageInitShape<typeof AuditEventFilterSchema>, order = SortOrder.ASCENDING, pageSize = 7) => {
    const seen: number[] = [];
    let pageToken = "";
    do {
      const page = await audit().queryAuditEvents({ filter, order, pageSize, pageToken });
      expect(page.events.length).toBeLessThanOrEqual(pageSize);
      seen.push(...page.events.map((e) => Number(e.metadata["i"] ?? -1)));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return seen;
  };
  const range = (n: number, keep: (i: number) => boolean) => Array.from({ length: n }, (_, i) => i).filter(keep);

  it("applies every filter", async () => {
    expect(await all({ types: ["test.even"] })).toEqual(range(30, (i) => i % 2 === 0));
    expect(await all({ types: ["test.odd.*"] })).toEqual(range(30, (i) => i % 2 === 1));
    expect(await all({ types: ["test.*"], outcome: AuditOutcome.DENIED })).toEqual(range(30, (i) => i % 3 === 0));
    expect(await all({ types: ["test.*"], actorId: alice.userId })).toEqual(range(10, () => true));
    expect(await all({ types: ["test.*"], targetId: bob.userId })).toEqual([25, 26, 27, 28, 29]);
    expect(await all({ ip: "203.0.113.7" })).toEqual(range(30, (i) => i % 5 === 0));
    expect(await all({ method: "/portcullis.v1.TestService/Do", requestId: "req-17" })).toEqual([17]);
    expect(await all({ types: ["test.*"], startTime: timestampFromDate(startedAt), endTime: timestampFromDate(new Date(Date.now() + 60_000)) })).toHaveLength(30);
    expect(await all({ types: ["test.*"], endTime: timestampFromDate(startedAt) })).toEqual([]);
  });

  it("pages in either order, newest first by default, and the events carry sequence and hash", async () => {
    const desc = await all({ types: ["test.*"] }, SortOrder.DESCENDING);
    expect(desc).toEqual(range(30, () => true).reverse());
    const first = await audit().queryAuditEvents({ filter: { types: ["test.*"] }, pageSize: 3 });
    expect(first.events.map((e) => e.metadata["i"])).toEqual(["29", "28", "27"]);
    expect(first.events[0]!.sequence).toBeGreaterThan(first.events[1]!.sequence);
    expect(first.events[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.events[0]!.prevHash).toBe(first.events[1]!.hash);
  });

  it("stays stable while new events arrive: no event twice, none skipped", async () => {
    const seen: string[] = [];
    let pageToken = "";
    let written = 0;
    for (const order of [SortOrder.DESCENDING, SortOrder.ASCENDING]) {
      seen.length = 0;
      pageToken = "";
      do {
        const page = await audit().queryAuditEvents({ filter: { types: ["test.*"] }, order, pageSize: 4, pageToken });
        seen.push(...page.events.map((e) => e.id));
        pageToken = page.nextPageToken;
        // Interleaved writes of matching events between pages.
        await gw.audit.recordNow({ type: "test.late", outcome: "success", metadata: { i: 1000 + written++ } });
      } while (pageToken !== "");
      expect(new Set(seen).size).toBe(seen.length);
      const original = seen.filter((id) => !id.includes("late"));
      expect(original.length).toBeGreaterThanOrEqual(30);
    }
  });

  it("refuses bad input with INVALID_ARGUMENT and leaks nothing", async () => {
    const bad: Array<Parameters<ReturnType<typeof audit>["queryAuditEvents"]>[0]> = [
      { pageToken: "garbage" },
      { pageToken: "eyJzIjoxLCJvIjoiZGVzYyIsImYiOiJ4In0.AAAA" },
      { pageSize: -1 },
      { filter: { startTime: timestampFromDate(new Date()), endTime: timestampFromDate(new Date(Date.now() - 1000)) } },
      { filter: { actorId: '{"$ne": ""}' } },
      { filter: { actorId: "$ne" } },
      { filter: { targetId: "$where" } },
      { filter: { requestId: "a b" } },
      { filter: { types: ["$regex"] } },
      { filter: { ip: "not-an-ip" } },
      { filter: { method: "$gt" } },
      { order: 7 as SortOrder },
      { filter: { outcome: 42 as AuditOutcome } },
    ];
    for (const request of bad) {
      const error = await expectCode(audit().queryAuditEvents(request), Code.InvalidArgument);
      expect(error.rawMessage).not.toMatch(/mongo|ferret|stack|at .*\.ts/i);
    }
  });

  it("a page token cannot be forged, edited or reused with another filter", async () => {
    const page = await audit().queryAuditEvents({ filter: { types: ["test.*"] }, pageSize: 2 });
    const [payload, mac] = page.nextPageToken.split(".");
    const decoded = JSON.parse(Buffer.from(payload!, "base64url").toString()) as { s: number };
    const edited = `${Buffer.from(JSON.stringify({ ...decoded, s: decoded.s + 100 })).toString("base64url")}.${mac}`;
    await expectCode(audit().queryAuditEvents({ filter: { types: ["test.*"] }, pageSize: 2, pageToken: edited }), Code.InvalidArgument);
    await expectCode(audit().queryAuditEvents({ filter: { types: ["test.even"] }, pageSize: 2, pageToken: page.nextPageToken }), Code.InvalidArgument);
    await expectCode(audit().queryAuditEvents({ filter: { types: ["test.*"] }, pageSize: 2, order: SortOrder.ASCENDING, pageToken: page.nextPageToken }), Code.InvalidArgument);
    const next = await audit().queryAuditEvents({ filter: { types: ["test.*"] }, pageSize: 2, pageToken: page.nextPageToken });
    expect(next.events).toHaveLength(2);
  });

  it("ListMyAuditEvents shows the caller's events as actor or target, never another user's", async () => {
    const mine = await gw.client(AuditService, { token: alice.token }).listMyAuditEvents({ pageSize: 1000 });
    const ids = mine.events.map((e) => e.metadata["i"]).filter((i) => i !== undefined);
    expect(ids).toEqual(["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]);
    for (const e of mine.events) expect([e.actor?.id, e.target?.id]).toContain(alice.userId);
    const bobs = await gw.client(AuditService, { token: bob.token }).listMyAuditEvents({ pageSize: 2 });
    for (const e of bobs.events) expect([e.actor?.id, e.target?.id]).toContain(bob.userId);
    expect(JSON.stringify(bobs.events, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(alice.userId);
    // Bob cannot follow Alice's page token.
    const alicePage = await gw.client(AuditService, { token: alice.token }).listMyAuditEvents({ pageSize: 2 });
    expect(alicePage.nextPageToken).not.toBe("");
    await expectCode(gw.client(AuditService, { token: bob.token }).listMyAuditEvents({ pageSize: 2, pageToken: alicePage.nextPageToken }), Code.InvalidArgument);
  });

  it("ListMyAuditEvents includes the events of the caller's API keys", async () => {
    const { apiKey, secret } = await gw.client(ApiKeyService, { token: alice.token }).createApiKey({ name: "alice-ci", scopes: ["audit.read.self"] });
    // Using the key from a first address records an event whose actor is the key.
    const viaKey = await gw.client(AuditService, { token: secret }).listMyAuditEvents({ pageSize: 1000 });
    expect(viaKey.events.length).toBeGreaterThan(0);
    await gw.audit.flush();
    const mine = await gw.client(AuditService, { token: alice.token }).listMyAuditEvents({ pageSize: 1000 });
    expect(mine.events.some((e) => e.actor?.id === apiKey!.id && e.type === "api_key.new_ip")).toBe(true);
    const bobs = await gw.client(AuditService, { token: bob.token }).listMyAuditEvents({ pageSize: 1000 });
    expect(bobs.events.some((e) => e.actor?.id === apiKey!.id || e.target?.id === apiKey!.id)).toBe(false);
  });

  it("UNAUTHENTICATED without credentials, PERMISSION_DENIED for a user calling QueryAuditEvents", async () => {
    await expectCode(gw.client(AuditService).queryAuditEvents({}), Code.Unauthenticated);
    await expectCode(gw.client(AuditService).listMyAuditEvents({}), Code.Unauthenticated);
    await expectCode(gw.client(AuditService, { token: alice.token }).queryAuditEvents({}), Code.PermissionDenied);
    await expectCode(gw.client(AuditService, { token: alice.token }).getSuspiciousActivity({}), Code.PermissionDenied);
    // Each refusal is itself an audit event, which is what bursts of probing are found from.
    const denied = await gw.auditEvents("access.denied");
    expect(denied).toContainEqual(
      expect.objectContaining({
        outcome: "denied",
        actor: expect.objectContaining({ kind: "user", id: alice.userId }),
        method: "/portcullis.v1.AuditService/QueryAuditEvents",
        reason: "permission audit.read required",
      }),
    );
    expect(denied.filter((e) => (e["actor"] as { id?: string }).id === alice.userId).length).toBeGreaterThanOrEqual(2);
  });

  it("reading the log is itself audited, with the filter", async () => {
    await audit().queryAuditEvents({ filter: { types: ["test.even"], ip: "203.0.113.7" }, pageSize: 5 });
    const reads = await gw.auditEvents("audit.query");
    const read = reads.find((e) => (e["metadata"] as Record<string, string>)["ip"] === "203.0.113.7" && (e["metadata"] as Record<string, string>)["types"] === "test.even");
    expect(read).toMatchObject({ actor: { kind: "user", id: admin.userId }, metadata: { types: "test.even", order: "desc", returned: 3 } });
    expect((await gw.auditEvents("audit.list_mine")).length).toBeGreaterThan(0);
  });
});
