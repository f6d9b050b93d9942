import { MongoBulkWriteError, MongoServerError, type ChangeStream, type Collection, type Filter, type Sort } from "mongodb";
import { jobIdFloor, ownerRange } from "../domain/jobs/job-ids.ts";
import type { JobClaim, JobEvent, JobOutcome, JobRecord, JobTicket } from "../domain/jobs/job-record.ts";
import type { IdempotencyRecord, JobListQuery, JobSlot, JobsStore } from "../domain/jobs/jobs-store.ts";
import type { Store } from "./mongo-store.ts";
import { ORDERED_INSERT_MAX } from "./ordered-insert.ts";

const DUPLICATE_KEY = 11000;

type Doc<T> = T & { _id: string };
type EventDoc = Doc<JobEvent>;
type ClaimDoc = Doc<JobClaim>;
type TicketDoc = Omit<JobTicket, "id"> & { _id: string };
type OutcomeDoc = Doc<JobOutcome>;
type SlotDoc = Doc<JobSlot>;
type IdempotencyDoc = Doc<IdempotencyRecord>;

const pad = (n: number, width: number) => String(n).padStart(width, "0");
const eventId = (jobId: string, sequence: number) => `${jobId}:${pad(sequence, 10)}`;
const claimId = (jobId: string, attempt: number) => `${jobId}:${pad(attempt, 4)}`;
const idempotencyId = (userId: string, keyHash: string, generation: number) => `${userId}|${keyHash}|${pad(generation, 6)}`;
/** Every `_id` of one job's events or claims lies in (`<job>:`, `<job>;`): ";" follows ":". */
const under = (prefix: string) => ({ $gt: `${prefix}:`, $lt: `${prefix};` });

function isDuplicate(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY;
}

async function insertOnce<T extends { _id: string }>(collection: Collection<T>, doc: T): Promise<boolean> {
  try {
    await collection.insertOne(doc as Parameters<Collection<T>["insertOne"]>[0]);
    return true;
  } catch (error) {
    if (isDuplicate(error)) return false;
    throw error;
  }
}

const strip = <T extends { _id: string }>(doc: T): Omit<T, "_id"> => {
  const { _id, ...rest } = doc;
  void _id;
  return rest;
};

/**
 * The jobs' collections (see schema.ts). Jobs, events, claims, tickets, outcomes, unfinished-job places
 * and idempotency keys are separate documents so that every decision is an insert of its own `_id`
 * and every document has one writer at a time.
 *
 * Every read on the hot path is a point lookup by `_id`, several side by side where several are
 * needed: FerretDB 1.24 answers those from SQLite's primary key but scans the whole collection for an
 * `_id` range or `$in` (20,000 documents: 24 ms against 350 ms on the test machine). Ranges are used only
 * on small collections (tickets: unfinished jobs; places: unfinished jobs per user) and by listings.
 */
export function createJobsStore(store: Store): JobsStore {
  const db = store.db;
  const jobs = db.collection<JobRecord>("jobs");
  const events = db.collection<EventDoc>("job_events");
  const claims = db.collection<ClaimDoc>("job_claims");
  const tickets = db.collection<TicketDoc>("job_tickets");
  const outcomes = db.collection<OutcomeDoc>("job_outcomes");
  const slots = db.collection<SlotDoc>("job_slots");
  const idempotency = db.collection<IdempotencyDoc>("job_idempotency");
  const archive = db.collection<{ _id: string; events: JobEvent[] }>("job_event_archive");

  const toEvent = (doc: EventDoc): JobEvent => strip(doc);
  const toClaim = (doc: ClaimDoc): JobClaim => strip(doc);
  const toOutcome = (doc: OutcomeDoc): JobOutcome => strip(doc);
  const toTicket = (doc: TicketDoc): JobTicket => ({ ...strip(doc), id: doc._id });

  const filterOf = (query: Omit<JobListQuery, "limit">): Filter<JobRecord> => {
    const filter: Record<string, unknown> = {};
    if (query.statuses) filter["status"] = { $in: [...query.statuses] };
    if ("ownerUserId" in query.scope) {
      // One owner's jobs are an _id range, and the id begins with the creation time: no index needed.
      const range = ownerRange(query.scope.ownerUserId);
      const lower = query.createdFrom ? jobIdFloor(query.scope.ownerUserId, query.createdFrom) : range.lower;
      let upper = query.createdTo ? jobIdFloor(query.scope.ownerUserId, query.createdTo) : range.upper;
      if (query.after && query.after.id < upper) upper = query.after.id;
      filter["_id"] = { $gte: lower, $lt: upper };
    } else {
      const created: Record<string, Date> = {};
      if (query.createdFrom) created["$gte"] = query.createdFrom;
      if (query.createdTo) created["$lt"] = query.createdTo;
      if (Object.keys(created).length > 0) filter["createdAt"] = created;
      if (query.after) {
        const at = new Date(query.after.createdAt);
        filter["$or"] = [{ createdAt: { $lt: at } }, { createdAt: at, _id: { $lt: query.after.id } }];
      }
    }
    return filter as Filter<JobRecord>;
  };
  const sortOf = (query: Omit<JobListQuery, "limit">): Sort => ("ownerUserId" in query.scope ? { _id: -1 } : { createdAt: -1, _id: -1 });

  const getJob = async (jobId: string) => ((await jobs.findOne({ _id: jobId })) ?? undefined) as JobRecord | undefined;
  const getEvent = async (jobId: string, sequence: number) => {
    const doc = await events.findOne({ _id: eventId(jobId, sequence) });
    return doc ? toEvent(doc) : undefined;
  };
  const getClaim = async (jobId: string, attempt: number) => {
    const doc = await claims.findOne({ _id: claimId(jobId, attempt) });
    return doc ? toClaim(doc) : undefined;
  };
  const getOutcome = async (jobId: string) => {
    const doc = await outcomes.findOne({ _id: jobId });
    return doc ? toOutcome(doc) : undefined;
  };

  const listJobs = (query: JobListQuery) => jobs.find(filterOf(query)).sort(sortOf(query)).limit(query.limit).toArray() as Promise<JobRecord[]>;

  return {
    async insertJob(job) {
      await jobs.insertOne(job);
    },
    getJob,
    getJobs: async (jobIds) => (await Promise.all(jobIds.map(getJob))).filter((j): j is JobRecord => j !== undefined),
    async updateJob(jobId, set) {
      await jobs.updateOne({ _id: jobId }, { $set: set });
    },
    listJobs,
    async *iterateJobs(query, pageSize) {
      let after = query.after;
      for (;;) {
        const page = await listJobs({ ...query, ...(after ? { after } : {}), limit: pageSize });
        yield* page;
        if (page.length < pageSize) return;
        const last = page.at(-1)!;
        after = { id: last._id, createdAt: last.createdAt.getTime() };
      }
    },
    countJobs: (query) => jobs.countDocuments(filterOf(query)),

    async insertEvents(list) {
      if (list.length === 0) return 0;
      const docs = list.map((e) => ({ ...e, _id: eventId(e.jobId, e.sequence) }));
      let inserted = 0;
      // At most ORDERED_INSERT_MAX at once: past it, FerretDB stores what follows a taken position.
      for (let start = 0; start < docs.length; start += ORDERED_INSERT_MAX) {
        const chunk = docs.slice(start, start + ORDERED_INSERT_MAX);
        try {
          if (chunk.length === 1) await events.insertOne(chunk[0]!);
          else await events.insertMany(chunk, { ordered: true });
          inserted += chunk.length;
        } catch (error) {
          if (isDuplicate(error)) return inserted;
          if (error instanceof MongoBulkWriteError && error.writeErrors && [error.writeErrors].flat().every((e) => e.code === DUPLICATE_KEY)) return inserted + error.insertedCount;
          throw error;
        }
      }
      return inserted;
    },
    getEvent,
    eventsFrom: async (jobId, from, limit) => {
      // Point reads in growing windows, side by side: FerretDB answers an _id lookup from its primary
      // key, but scans the whole collection for an _id range or $in.
      const out: JobEvent[] = [];
      let next = Math.max(1, from);
      for (let window = 8; out.length < limit; window = Math.min(window * 2, 128)) {
        const size = Math.min(window, limit - out.length);
        const found = await Promise.all(Array.from({ length: size }, (_, i) => getEvent(jobId, next + i)));
        for (const event of found) {
          if (!event) return out;
          out.push(event);
        }
        next += size;
      }
      return out;
    },
    lastEvent: async (jobId, hint) => {
      // The hint is usually exact: it and the position after it, side by side, settle most lookups.
      const [atHint, after] = await Promise.all([hint > 0 ? getEvent(jobId, hint) : undefined, getEvent(jobId, hint + 1)]);
      if (hint > 0 && !atHint) return undefined;
      if (!after) return atHint;
      let last = after;
      for (let from = hint + 2; ; from += 8) {
        const found = await Promise.all(Array.from({ length: 8 }, (_, i) => getEvent(jobId, from + i)));
        for (const event of found) {
          if (!event) return last;
          last = event;
        }
      }
    },
    existingEvents: async (positions) => (await Promise.all(positions.map((p) => getEvent(p.jobId, p.sequence)))).filter((e): e is JobEvent => e !== undefined),
    async archiveEvents(jobId, list) {
      await insertOnce(archive, { _id: jobId, events: [...list] });
      await events.deleteMany({ jobId });
    },
    archivedEvents: async (jobId) => (await archive.findOne({ _id: jobId }))?.events,
    async deleteEvents(jobIds) {
      if (jobIds.length === 0) return;
      await events.deleteMany({ jobId: { $in: [...jobIds] } });
      await archive.deleteMany({ _id: { $in: [...jobIds] } });
    },

    insertClaim: (claim) => insertOnce(claims, { ...claim, _id: claimId(claim.jobId, claim.attempt) }),
    getClaim,
    latestClaim: async (jobId, hint) => {
      let latest: JobClaim | undefined;
      for (let attempt = Math.max(1, hint); ; attempt++) {
        const claim = await getClaim(jobId, attempt);
        if (!claim) return latest;
        latest = claim;
      }
    },
    existingClaims: async (list) => (await Promise.all(list.map((c) => getClaim(c.jobId, c.attempt)))).filter((c): c is JobClaim => c !== undefined),
    async renewClaims(list, leaseUntil) {
      if (list.length === 0) return;
      await claims.updateMany({ _id: { $in: list.map((c) => claimId(c.jobId, c.attempt)) } }, { $set: { leaseUntil } });
    },
    async endClaim(jobId, attempt, end) {
      await claims.updateOne({ _id: claimId(jobId, attempt) }, { $set: { end } });
    },
    async deleteClaims(jobId) {
      await claims.deleteMany({ jobId });
    },

    insertTicket: (ticket) => {
      const { id, ...rest } = ticket;
      return insertOnce(tickets, { ...rest, _id: id });
    },
    async deleteTicket(ticketId) {
      await tickets.deleteOne({ _id: ticketId });
    },
    dueTickets: async (now, limit) =>
      (
        await tickets
          .find({ _id: { $lte: `${pad(now.getTime(), 15)}|~` } })
          .sort({ _id: 1 })
          .limit(limit)
          .toArray()
      ).map(toTicket),

    insertOutcome: (outcome) => insertOnce(outcomes, { ...outcome, _id: outcome.jobId }),
    getOutcome,
    getOutcomes: async (jobIds) => (await Promise.all(jobIds.map(getOutcome))).filter((o): o is JobOutcome => o !== undefined),

    slotsOf: async (userId) => (await slots.find({ _id: under(userId) }).toArray()).map((doc) => strip(doc)),
    insertSlot: (slot) => insertOnce(slots, { ...slot, _id: `${slot.userId}:${pad(slot.slot, 6)}` }),
    async deleteSlot(userId, slot) {
      await slots.deleteOne({ _id: `${userId}:${pad(slot, 6)}` });
    },
    async deleteSlotOf(userId, jobId) {
      await slots.deleteMany({ _id: under(userId), jobId });
    },

    idempotencyGenerations: async (userId, keyHash) => {
      const out: IdempotencyRecord[] = [];
      for (let generation = 1; ; generation++) {
        const doc = await idempotency.findOne({ _id: idempotencyId(userId, keyHash, generation) });
        // A generation given up (deleted) may sit below a later one: look one further.
        if (!doc && !(await idempotency.findOne({ _id: idempotencyId(userId, keyHash, generation + 1) }))) return out;
        if (doc) out.push(strip(doc));
      }
    },
    insertIdempotency: (record) => insertOnce(idempotency, { ...record, _id: idempotencyId(record.userId, record.keyHash, record.generation) }),
    async deleteIdempotency(record) {
      await idempotency.deleteOne({ _id: idempotencyId(record.userId, record.keyHash, record.generation) });
    },
    sweepIdempotency: async (before) => (await idempotency.deleteMany({ createdAt: { $lt: before } })).deletedCount,

    finishedBefore: (before, limit) =>
      jobs
        .find({ finishedAt: { $lt: before }, eventsRemovedAt: { $exists: false } })
        .limit(limit)
        .toArray() as Promise<JobRecord[]>,

    async watchChanges(onChange) {
      const sources = [
        ["tickets", tickets],
        ["events", events],
        ["outcomes", outcomes],
      ] as const;
      // A probe first: FerretDB and a standalone mongod refuse change streams, and the refusal comes
      // with the first read of the stream, not when it is opened.
      const probe = tickets.watch([], { maxAwaitTimeMS: 1 });
      try {
        await probe.tryNext();
      } catch {
        return undefined;
      } finally {
        await probe.close().catch(() => undefined);
      }
      const streams: ChangeStream[] = sources.map(([what, collection]) => {
        const stream = (collection as unknown as Collection).watch([{ $match: { operationType: "insert" } }]);
        stream.on("change", () => onChange(what));
        stream.on("error", () => void stream.close().catch(() => undefined));
        return stream;
      });
      return {
        async stop() {
          await Promise.all(streams.map((s) => s.close().catch(() => undefined)));
        },
      };
    },
  };
}
