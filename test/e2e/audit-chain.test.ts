import { Code } from "@connectrpc/connect";
import { auditSeqKey } from "../../src/store/audit-store.ts";
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, ChainBreakReason } from "../../gen/portcullis/v1/audit_pb.js";
import { chainHash, hashableFromRecord } from "../../src/domain/audit/audit-chain.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { expectCode, sharedKeyFile, userWithToken } from "../helpers/audit.ts";
import { startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

/**
 * The hash chain over the real server and database: two instances append concurrently, and every kind
 * of tampering done straight in the database is found by VerifyAuditChain with the first bad sequence.
 */
describe("audit hash chain", () => {
  let a: IdentityServer;
  let b: IdentityServer;
  let adminToken = "";
  const events = () => a.store.db.collection<Record<string, unknown> & { _id: string }>("audit_events");
  const verify = (range: { fromSequence?: bigint; toSequence?: bigint } = {}) => a.client(AuditService, { token: adminToken }).verifyAuditChain(range);

  /** Runs `tamper`, verifies, and restores the collection to what it was. */
  const tampered = async (tamper: () => Promise<unknown>) => {
    await a.audit.flush();
    await b.audit.flush();
    const before = await events().find().sort({ _id: 1 }).toArray();
    const heads = await a.store.db.collection("audit_heads").find().toArray();
    try {
      await tamper();
      return await verify();
    } finally {
      await events().deleteMany({});
      await events().insertMany(before);
      await a.store.db.collection("audit_heads").deleteMany({});
      if (heads.length > 0) await a.store.db.collection("audit_heads").insertMany(heads);
    }
  };

  beforeAll(async () => {
    const dbName = testDatabaseName(import.meta.url);
    const keyFile = await sharedKeyFile();
    a = await startIdentityServer({ dbName, keyFile });
    b = await startIdentityServer({ dbName, keyFile });
    adminToken = (await userWithToken(a, "chain-admin", "admin")).token;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it("two instances writing at once: one chain, every sequence exactly once, and it verifies", async () => {
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < 300; i++) {
      const gw = i % 2 === 0 ? a : b;
      if (i % 3 === 0) writes.push(gw.audit.recordNow({ type: "test.concurrent", outcome: "success", metadata: { i } }));
      else gw.audit.record({ type: "test.concurrent", outcome: "success", metadata: { i } });
    }
    await Promise.all(writes);
    await Promise.all([a.audit.flush(), b.audit.flush()]);

    const docs = await events().find().sort({ _id: 1 }).toArray();
    expect(docs.map((d) => d._id)).toEqual(docs.map((_, i) => auditSeqKey(i + 1))); // 1..N: no gap, no duplicate
    expect(new Set(docs.map((d) => d["eventId"])).size).toBe(docs.length);
    const concurrent = docs.filter((d) => d["type"] === "test.concurrent");
    expect(new Set(concurrent.map((d) => (d["metadata"] as { i: number }).i)).size).toBe(300);
    const recorders = new Set(concurrent.map((d) => d["recorderId"]));
    expect(recorders.size).toBe(2);

    const result = await verify();
    expect(result).toMatchObject({ ok: true, reason: ChainBreakReason.UNSPECIFIED, detail: "" });
    expect(result.checkedCount).toBe(BigInt(docs.length));
    expect(result.headSequence).toBe(BigInt(docs.length));
    expect(result.headHash).toBe(docs.at(-1)!["hash"]);
    expect(result.firstBadSequence).toBeUndefined();
  });

  it("signs the head with the key published in the JWKS", async () => {
    const result = await verify();
    const jwks = createLocalJWKSet(JSON.parse(await (await fetch(`${a.baseUrl}/.well-known/jwks.json`)).text()));
    const { payload } = await compactVerify(result.headSignature, jwks);
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({ seq: Number(result.headSequence), hash: result.headHash });
    expect(decodeProtectedHeader(result.headSignature).typ).toBe("portcullis-audit-head+jws");
  });

  it("finds a modified event", async () => {
    const result = await tampered(() => events().updateOne({ _id: auditSeqKey(5) }, { $set: { reason: "nothing to see here" } }));
    expect(result).toMatchObject({ ok: false, firstBadSequence: 5n, reason: ChainBreakReason.MODIFIED });
  });

  it("finds a modified event whose hash was recomputed (it carries no valid seal)", async () => {
    const result = await tampered(async () => {
      const doc = await events().findOne({ _id: auditSeqKey(7) });
      const forged = { ...doc!, outcome: "success", reason: "fine" };
      const record = { ...forged, _id: String(doc!["eventId"]), time: doc!["time"] as Date } as never;
      await events().updateOne({ _id: auditSeqKey(7) }, { $set: { outcome: "success", reason: "fine", hash: chainHash(String(doc!["prevHash"]), hashableFromRecord(record)) } });
    });
    expect(result.ok).toBe(false);
    expect(result.firstBadSequence).toBe(7n);
    expect(result.reason).toBe(ChainBreakReason.INSERTED);
  });

  it("finds a deleted event", async () => {
    const result = await tampered(() => events().deleteOne({ _id: auditSeqKey(10) }));
    expect(result).toMatchObject({ ok: false, firstBadSequence: 10n, reason: ChainBreakReason.DELETED });
  });

  it("finds reordered events", async () => {
    const result = await tampered(async () => {
      const [x, y] = await events()
        .find({ _id: { $in: [auditSeqKey(20), auditSeqKey(21)] } })
        .sort({ _id: 1 })
        .toArray();
      await events().deleteMany({ _id: { $in: [auditSeqKey(20), auditSeqKey(21)] } });
      await events().insertMany([
        { ...y!, _id: auditSeqKey(20) },
        { ...x!, _id: auditSeqKey(21) },
      ]);
    });
    expect(result).toMatchObject({ ok: false, firstBadSequence: 20n, reason: ChainBreakReason.REORDERED });
  });

  it("finds an inserted event, even one with a correct hash and link", async () => {
    const result = await tampered(async () => {
      const head = (await events().find().sort({ _id: -1 }).limit(1).toArray())[0]!;
      // One timestamp for the hashed record and the stored one: two `new Date()` calls can straddle a
      // millisecond, and the event would then read as MODIFIED rather than INSERTED.
      const time = new Date();
      const record = { _id: "forged:1", time, type: "auth.login", outcome: "success", recorderId: "forged", recorderSeq: 1 } as never;
      const hash = chainHash(String(head["hash"]), hashableFromRecord(record));
      await events().insertOne({
        _id: auditSeqKey(Number(head._id) + 1),
        eventId: "forged:1",
        time,
        type: "auth.login",
        outcome: "success",
        recorderId: "forged",
        recorderSeq: 1,
        prevHash: head["hash"],
        hash,
        seal: "x",
      });
    });
    expect(result.ok).toBe(false);
    expect(result.reason).toBe(ChainBreakReason.INSERTED);
    expect(result.firstBadSequence).toBe(result.headSequence);
  });

  it("finds events removed from the end (the signed head is gone)", async () => {
    await verify(); // signs the current head
    const result = await tampered(async () => {
      const head = (await events().find().sort({ _id: -1 }).limit(1).toArray())[0]!;
      await events().deleteMany({ _id: { $gte: auditSeqKey(Number(head._id) - 2) } });
    });
    expect(result.ok).toBe(false);
    expect(result.reason).toBe(ChainBreakReason.HEAD_MISMATCH);
    expect(result.firstBadSequence).toBe(result.headSequence + 1n);
  });

  it("the chain is intact again after each restore, and a range verifies on its own", async () => {
    expect((await verify()).ok).toBe(true);
    const ranged = await verify({ fromSequence: 10n, toSequence: 20n });
    expect(ranged).toMatchObject({ ok: true, checkedCount: 11n });
  });

  it("refuses an inverted range, anonymous callers and users without audit.read", async () => {
    await expectCode(verify({ fromSequence: 9n, toSequence: 3n }), Code.InvalidArgument);
    await expectCode(a.client(AuditService).verifyAuditChain({}), Code.Unauthenticated);
    const user = await userWithToken(a, "chain-user", "user");
    await expectCode(a.client(AuditService, { token: user.token }).verifyAuditChain({}), Code.PermissionDenied);
  });
});
