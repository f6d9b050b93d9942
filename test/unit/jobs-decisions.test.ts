import { describe, expect, it } from "vitest";
import { appendAfterLast, createRunEventWriter, PositionTaken } from "../../src/domain/jobs/job-event-writer.ts";
import { newJobId } from "../../src/domain/jobs/job-ids.ts";
import type { JobEvent } from "../../src/domain/jobs/job-record.ts";
import { createJobsStore } from "../../src/store/jobs-store.ts";
import { useTestStore } from "../helpers/database.ts";

/**
 * The decisions the job queue makes by inserting a document with a unique `_id`, raced on the real
 * database (FerretDB by default, which has neither transactions nor atomic conditional updates).
 */
const db = useTestStore(import.meta.url);
const USER = "0b5e7f7e-5a0c-4e8e-9f0e-3f1c2d4b6a70";

describe("job decisions by unique inserts", () => {
  it("of many instances claiming one run, exactly one gets it", async () => {
    const store = createJobsStore(db.store);
    const jobId = newJobId(USER, new Date());
    const at = new Date();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.insertClaim({ jobId, attempt: 1, instanceId: `instance-${i}`, claimedAt: at, leaseUntil: at, failures: 0 })));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await store.latestClaim(jobId, 1))?.instanceId).toBe(`instance-${results.indexOf(true)}`);
  });

  it("a cancellation and a completion racing: one outcome", async () => {
    const store = createJobsStore(db.store);
    const jobId = newJobId(USER, new Date());
    const [cancelled, succeeded] = await Promise.all([store.insertOutcome({ jobId, status: "cancelled", at: new Date() }), store.insertOutcome({ jobId, status: "succeeded", at: new Date() })]);
    expect(cancelled !== succeeded).toBe(true);
    expect((await store.getOutcome(jobId))?.status).toBe(cancelled ? "cancelled" : "succeeded");
  });

  it("a superseded run cannot write after its successor's RESTARTED, and nothing follows the terminal event", async () => {
    const store = createJobsStore(db.store);
    const jobId = newJobId(USER, new Date());
    await store.insertEvents([{ jobId, sequence: 1, time: new Date(), kind: "queued", attempt: 0 }]);
    const stale = createRunEventWriter({ store, jobId, attempt: 1, afterSequence: 1, flushMs: 1000 });
    stale.append({ kind: "started" });
    stale.append({ kind: "progress", progressPercent: 10 });
    stale.append({ kind: "output", textDelta: "old " });
    await stale.flush();
    // The successor starts after what it saw; the stale run, unaware, writes on at the same positions.
    const successor = createRunEventWriter({ store, jobId, attempt: 2, afterSequence: stale.lastSequence, flushMs: 1000 });
    successor.append({ kind: "restarted", errorMessage: "lease expired" });
    stale.append({ kind: "output", textDelta: "stale" });
    const [first, second] = await Promise.allSettled([successor.flush(), stale.flush()]);
    const loser = first.status === "rejected" ? first : second;
    expect(loser.status).toBe("rejected");
    expect((loser as PromiseRejectedResult).reason).toBeInstanceOf(PositionTaken);
    // Whichever lost, it writes nothing more.
    const lost = first.status === "rejected" ? successor : stale;
    lost.append({ kind: "output", textDelta: "never" });
    await expect(lost.flush()).rejects.toBeInstanceOf(PositionTaken);

    const terminal: Omit<JobEvent, "sequence"> = { jobId, time: new Date(), kind: "completed", attempt: 2 };
    const [x, y] = await Promise.all([appendAfterLast(store, jobId, terminal, 1), appendAfterLast(store, jobId, { ...terminal, kind: "cancelled" }, 1)]);
    expect([x.written, y.written].filter(Boolean)).toHaveLength(1);
    expect(x.event.sequence).toBe(y.event.sequence);
    const events = await store.eventsFrom(jobId, 1, 100);
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => ["completed", "cancelled"].includes(e.kind))).toHaveLength(1);
    expect(["completed", "cancelled"]).toContain(events.at(-1)!.kind);
    expect(events.filter((e) => e.textDelta === "never")).toHaveLength(0);
  });

  it("idempotency generations and unfinished-job places: one insert wins each", async () => {
    const store = createJobsStore(db.store);
    const record = { userId: USER, keyHash: "abc", generation: 1, jobId: "j", parametersHash: "p", createdAt: new Date() };
    const won = await Promise.all(Array.from({ length: 10 }, (_, i) => store.insertIdempotency({ ...record, jobId: `j${i}` })));
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(await store.idempotencyGenerations(USER, "abc")).toHaveLength(1);
    const places = await Promise.all(Array.from({ length: 10 }, (_, i) => store.insertSlot({ userId: USER, slot: 0, jobId: `j${i}`, takenAt: new Date() })));
    expect(places.filter(Boolean)).toHaveLength(1);
  });
});
