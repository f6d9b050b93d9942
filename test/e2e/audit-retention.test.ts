import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditSeqKey } from "../../src/store/audit-store.ts";
import { AuditService, ChainBreakReason } from "../../gen/portcullis/v1/audit_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { userWithToken } from "../helpers/audit.ts";
import { startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

describe("audit retention", () => {
  let gw: IdentityServer;
  let token = "";
  const events = () => gw.store.db.collection<Record<string, unknown> & { _id: string }>("audit_events");
  const verify = () => gw.client(AuditService, { token }).verifyAuditChain({});

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_AUDIT_RETENTION_DAYS: "30" } });
    token = (await userWithToken(gw, "retention-admin", "admin")).token;
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("deletes events older than the retention, oldest first, behind a signed checkpoint; the rest still verifies", async () => {
    for (let i = 0; i < 20; i++) await gw.audit.recordNow({ type: "retention.event", outcome: "success", metadata: { i } });
    await gw.audit.flush();
    const all = await events().find().sort({ _id: 1 }).toArray();
    // Age the first 12 events beyond the retention straight in the database (the chain hashes `time`,
    // so this test rewrites what the hash covers: it re-chains them as if they had been written then).
    const old = new Date(Date.now() - 40 * 86_400_000);
    const { chainHash, createChainSealer, hashableFromRecord } = await import("../../src/domain/audit/audit-chain.ts");
    const { deriveAuditKeys } = await import("../../src/domain/audit/audit-keys.ts");
    const { loadOrCreateKeyring } = await import("../../src/keys/keyring.ts");
    const sealer = createChainSealer(deriveAuditKeys((await loadOrCreateKeyring(gw.config.keyFile, gw.config.suppliedKeys)).encryptionKey).seal);
    let prev = "0".repeat(64);
    for (const doc of all) {
      const time = Number(doc._id) <= 12 ? old : (doc["time"] as Date);
      const hash = chainHash(prev, hashableFromRecord({ ...doc, _id: String(doc["eventId"]), time } as never));
      await events().updateOne({ _id: doc._id }, { $set: { time, prevHash: prev, hash, seal: sealer.seal(Number(doc._id), hash) } });
      prev = hash;
    }
    expect((await verify()).ok).toBe(true);

    expect(await gw.gateway.runNow.sweepAuditRetention()).toBe(12);
    const remaining = await events().find().sort({ _id: 1 }).toArray();
    expect(remaining[0]!._id).toBe(auditSeqKey(13));
    const [checkpoint] = await gw.store.db.collection("audit_checkpoints").find().toArray();
    expect(checkpoint).toMatchObject({ _id: 12 });
    expect(checkpoint!["jws"]).toMatch(/^ey/);

    const result = await verify();
    expect(result).toMatchObject({ ok: true });
    expect(Number(result.checkedCount)).toBe(remaining.length);
    expect(await gw.gateway.runNow.sweepAuditRetention()).toBe(0); // nothing more is old enough
    expect((await gw.auditEvents("audit.retention_sweep"))[0]).toMatchObject({ metadata: { deleted: 12, checkpoint_seq: 12 } });
  });

  it("deleting the oldest retained event is still found; so is a forged checkpoint", async () => {
    await events().deleteOne({ _id: auditSeqKey(13) });
    expect(await verify()).toMatchObject({ ok: false, firstBadSequence: 13n, reason: ChainBreakReason.DELETED });
    await gw.store.db.collection<{ _id: number }>("audit_checkpoints").insertOne({ _id: 13, hash: "f".repeat(64), jws: "not-a-signature", at: new Date() } as never);
    expect(await verify()).toMatchObject({ ok: false, reason: ChainBreakReason.DELETED });
  });
});
