import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createAuditRecorder, type AuditRecord } from "../../src/domain/audit/audit-recorder.ts";
import { createAuditStore } from "../../src/store/audit-store.ts";
import { useTestStore } from "../helpers/database.ts";
import { testSealer } from "../helpers/test-sealer.ts";

const database = useTestStore(import.meta.url);

/**
 * Another writer takes the position a long append starts at. MongoDB stops an ordered insert at its
 * first error; FerretDB 1.24 splits an insert into batches of 100 and goes on with the next batch after
 * one failed, so without a cap on the batch the positions after 100 were stored linked to a predecessor
 * that never was, and the chain broke (seen under load with two gateways writing at once).
 */
describe("audit store: a long append that loses its first position", () => {
  it("stores nothing past the lost position, re-chains on the winner, and the chain stays whole", async () => {
    const storeA = createAuditStore(database.store, testSealer);
    const a = createAuditRecorder({ store: storeA });
    const b = createAuditRecorder({ store: createAuditStore(database.store, testSealer) });
    const event = (writer: string) => ({ type: "test.contention", outcome: "success" as const, requestId: randomUUID(), metadata: { writer } });
    await a.recordNow(event("a")); // a holds position 1 and believes it is the head
    await b.recordNow(event("b")); // b takes position 2 behind a's back
    // 250 records a appends in one go (as concurrent appends are grouped): made by a recorder, then appended.
    const records: AuditRecord[] = [];
    const maker = createAuditRecorder({ store: { append: async (batch) => void records.push(...batch) } });
    for (let i = 0; i < 250; i++) maker.record(event("a"));
    await maker.flush();
    await storeA.append(records);

    const docs = await database.store.db.collection("audit_events").find({}).sort({ _id: 1 }).toArray();
    expect(docs).toHaveLength(252);
    expect(docs.map((d) => Number(d._id))).toEqual(docs.map((_, i) => i + 1));
    const broken = docs
      .slice(1)
      .filter((doc, i) => doc["prevHash"] !== docs[i]!["hash"])
      .map((doc) => Number(doc._id));
    expect(broken).toEqual([]);
    expect(new Set(docs.map((d) => d["eventId"])).size).toBe(252);
  });
});
