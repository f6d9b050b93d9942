import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { AuditExportFormat, AuditService, ChainBreakReason, type AuditEvent } from "../../gen/portcullis/v1/audit_pb.js";
import { SortOrder } from "../../gen/portcullis/v1/common_pb.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { chainHash, createChainSealer, hashableFromRecord, type ChainSealer } from "../../src/domain/audit/audit-chain.ts";
import { deriveAuditKeys } from "../../src/domain/audit/audit-keys.ts";
import { createAuditRecorder } from "../../src/domain/audit/audit-recorder.ts";
import { verifyExportFile } from "../../src/domain/audit/export-verification.ts";
import { loadOrCreateKeyring } from "../../src/keys/keyring.ts";
import { auditSeqKey, createAuditStore } from "../../src/store/audit-store.ts";
import { collect, userWithToken } from "../helpers/audit.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

const PROTOCOLS: readonly WireProtocol[] = ["grpc", "grpc-web", "connect"];
const AHEAD_MS = 5_000;

/**
 * `time` and `sequence` order events alike (audit.proto, docs/audit-chain.md): an event chained after
 * another is never dated before it, whichever writer's clock is ahead, and VerifyAuditChain and the
 * offline export check report an event dated before its predecessor as REORDERED.
 */
describe("audit times never run backwards along the chain", () => {
  let gw: IdentityServer;
  let token = "";
  let sealer: ChainSealer;
  const events = () => gw.store.db.collection<Record<string, unknown> & { _id: string }>("audit_events");
  const allEvents = async (protocol: WireProtocol) => {
    const out: AuditEvent[] = [];
    for (let pageToken = ""; ; ) {
      const page = await gw.client(AuditService, { token, protocol }).queryAuditEvents({ pageSize: 1000, pageToken, order: SortOrder.ASCENDING });
      out.push(...page.events);
      if (page.nextPageToken === "") return out;
      pageToken = page.nextPageToken;
    }
  };

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    token = (await userWithToken(gw, "time-admin", "admin")).token;
    sealer = createChainSealer(deriveAuditKeys((await loadOrCreateKeyring(gw.config.keyFile, gw.config.suppliedKeys)).encryptionKey).seal);

    // Another writer on the same chain whose clock runs 5 s ahead (another instance), then this one.
    const ahead = createAuditRecorder({ store: createAuditStore(gw.store, sealer), now: () => new Date(Date.now() + AHEAD_MS) });
    await ahead.recordNow({ type: "test.clock_ahead", outcome: "success" });
    await gw.audit.recordNow({ type: "test.clock_behind", outcome: "success" });
    // One process: a queued event is accepted first but written after a security-critical one.
    gw.audit.record({ type: "test.queued", outcome: "success" });
    await gw.audit.recordNow({ type: "test.written_at_once", outcome: "success" });
    await gw.audit.flush();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it.each(PROTOCOLS)("times read over %s are non-decreasing in sequence order, and the chain verifies", async (protocol) => {
    const all = await allEvents(protocol);
    expect(all.map((e) => Number(e.sequence))).toEqual(all.map((_, i) => i + 1));
    const times = all.map((e) => timestampDate(e.time!).getTime());
    for (let i = 1; i < times.length; i++) expect(times[i], `event ${i + 1} (${all[i]!.type}) after ${all[i - 1]!.type}`).toBeGreaterThanOrEqual(times[i - 1]!);
    const at = (type: string) => times[all.findIndex((e) => e.type === type)]!;
    // The event written after the clock that ran ahead carries that time, not its own earlier one.
    expect(at("test.clock_behind")).toBe(at("test.clock_ahead"));
    expect((await gw.client(AuditService, { token, protocol }).verifyAuditChain({})).ok).toBe(true);
  });

  it("VerifyAuditChain and the offline export check find an event dated before its predecessor, hashes and seals recomputed", async () => {
    await gw.audit.flush();
    const docs = await events().find().sort({ _id: 1 }).toArray();
    // Move one event 10 s into the past, then recompute every hash and seal from it on, as someone with
    // the database and the seal key would have to: only the order of times gives it away.
    const k = docs.length - 3;
    const target = docs[k]!;
    let prev = docs[k - 1]!["hash"] as string;
    for (const doc of docs.slice(k)) {
      const time = doc === target ? new Date((docs[k - 1]!["time"] as Date).getTime() - 10_000) : (doc["time"] as Date);
      const hash = chainHash(prev, hashableFromRecord({ ...doc, _id: String(doc["eventId"]), time } as never));
      await events().updateOne({ _id: doc._id }, { $set: { time, prevHash: prev, hash, seal: sealer.seal(Number(doc._id), hash) } });
      prev = hash;
    }
    await gw.store.db.collection("audit_heads").deleteMany({}); // signed heads predate the rewrite
    const seq = Number(target._id);
    expect(target._id).toBe(auditSeqKey(seq));
    const verdict = await gw.client(AuditService, { token }).verifyAuditChain({});
    expect(verdict).toMatchObject({ ok: false, reason: ChainBreakReason.REORDERED, firstBadSequence: BigInt(seq) });
    expect(verdict.detail).toContain("dated before");

    const text = Buffer.concat((await collect(gw.client(AuditService, { token }).exportAuditEvents({ format: AuditExportFormat.JSONL }))).map((m) => m.data)).toString("utf8");
    const jwks = (await (await fetch(`${gw.baseUrl}/.well-known/jwks.json`)).json()) as { keys: never[] };
    expect(await verifyExportFile(text, jwks.keys)).toMatchObject({ ok: false, reason: "reordered", sequence: seq });
  });
});
