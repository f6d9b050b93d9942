import { MongoBulkWriteError, MongoServerError, type ChangeStream, type Collection, type Filter, type Sort } from "mongodb";
import { jobIdFloor, ownerRange } from "../domain/jobs/job-ids.ts";
import type { JobClaim, JobEvent, JobOutcome, JobRecord, JobTicket } from "../domain/jobs/job-record.ts";
import type { IdempotencyRecord, JobListQuery, JobSlot, JobsStore } from "../domain/jobs/jobs-store.ts";
import type { Store } from "./mongo-store.ts";

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

  const listJobs = (query: JobListQuery) => jobs.find(filterOf(query)).sort(sortOf(query)).limit(query.limit).toArray() as Promise<JobRecord[]>;

  return {
    async insertJob(job) {
      await jobs.insertOne(job);
    },
    getJob: (jobId) => jobs.findOne({ _id: jobId }).then((doc) => doc ?? undefined) as Promise<JobRecord | undefined>,
    getJobs: (jobIds) => (jobIds.length === 0 ? Promise.resolve([]) : (jobs.find({ _id: { $in: [...jobIds] } }).toArray() as Promise<JobRecord[]>)),
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
      try {
        if (docs.length === 1) await events.insertOne(docs[0]!);
        else await events.insertMany(docs, { ordered: true });
        return docs.length;
      } catch (error) {
        if (isDuplicate(error)) return 0;
        if (error instanceof MongoBulkWriteError && error.writeErrors && [error.writeErrors].flat().every((e) => e.code === DUPLICATE_KEY)) return error.insertedCount;
        throw error;
      }
    },
    getEvent: (jobId, sequence) => events.findOne({ _id: eventId(jobId, sequence) }).then((doc) => (doc ? toEvent(doc) : undefined)),
    eventsFrom: async (jobId, from, limit) =>
      (
        await events
          .find({ _id: { $gte: eventId(jobId, Math.max(1, from)), $lt: `${jobId};` } })
          .sort({ _id: 1 })
          .limit(limit)
          .toArray()
      ).map(toEvent),
    lastEvent: async (jobId) => {
      const [doc] = await events.find({ _id: under(jobId) }).sort({ _id: -1 }).limit(1).toArray();
      return doc ? toEvent(doc) : undefined;
    },
    existingEvents: async (positions) => (positions.length === 0 ? [] : (await events.find({ _id: { $in: positions.map((p) => eventId(p.jobId, p.sequence)) } }).toArray()).map(toEvent)),
    async deleteEvents(jobId) {
      await events.deleteMany({ _id: under(jobId) });
    },

    insertClaim: (claim) => insertOnce(claims, { ...claim, _id: claimId(claim.jobId, claim.attempt) }),
    getClaim: (jobId, attempt) => claims.findOne({ _id: claimId(jobId, attempt) }).then((doc) => (doc ? toClaim(doc) : undefined)),
    latestClaim: async (jobId) => {
      const [doc] = await claims.find({ _id: under(jobId) }).sort({ _id: -1 }).limit(1).toArray();
      return doc ? toClaim(doc) : undefined;
    },
    existingClaims: async (list) => (list.length === 0 ? [] : (await claims.find({ _id: { $in: list.map((c) => claimId(c.jobId, c.attempt)) } }).toArray()).map(toClaim)),
    async renewClaims(list, leaseUntil) {
      if (list.length === 0) return;
      await claims.updateMany({ _id: { $in: list.map((c) => claimId(c.jobId, c.attempt)) } }, { $set: { leaseUntil } });
    },
    async endClaim(jobId, attempt, end) {
      await claims.updateOne({ _id: claimId(jobId, attempt) }, { $set: { end } });
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
    getOutcome: (jobId) => outcomes.findOne({ _id: jobId }).then((doc) => (doc ? toOutcome(doc) : undefined)),
    getOutcomes: async (jobIds) => (jobIds.length === 0 ? [] : (await outcomes.find({ _id: { $in: [...jobIds] } }).toArray()).map(toOutcome)),

    slotsOf: async (userId) => (await slots.find({ _id: under(userId) }).toArray()).map((doc) => strip(doc)),
    insertSlot: (slot) => insertOnce(slots, { ...slot, _id: `${slot.userId}:${pad(slot.slot, 6)}` }),
    async deleteSlot(userId, slot) {
      await slots.deleteOne({ _id: `${userId}:${pad(slot, 6)}` });
    },
    async deleteSlotOf(userId, jobId) {
      await slots.deleteMany({ _id: under(userId), jobId });
    },

    idempotencyGenerations: async (userId, keyHash) =>
      (
        await idempotency
          .find({ _id: { $gt: `${userId}|${keyHash}|`, $lt: `${userId}|${keyHash}}` } })
          .sort({ _id: 1 })
          .toArray()
      ).map((doc) => strip(doc)),
    insertIdempotency: (record) => insertOnce(idempotency, { ...record, _id: `${record.userId}|${record.keyHash}|${pad(record.generation, 6)}` }),
    async deleteIdempotency(record) {
      await idempotency.deleteOne({ _id: `${record.userId}|${record.keyHash}|${pad(record.generation, 6)}` });
    },
    sweepIdempotency: async (before) => (await idempotency.deleteMany({ createdAt: { $lt: before } })).deletedCount,

    finishedBefore: (before, limit) => jobs.find({ finishedAt: { $lt: before }, eventsRemovedAt: { $exists: false } }).limit(limit).toArray() as Promise<JobRecord[]>,

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
