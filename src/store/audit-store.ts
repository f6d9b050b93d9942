import { MongoBulkWriteError, MongoServerError, type Collection, type Filter } from "mongodb";
import type { ChainHead, ChainSealer, SealedAuditRecord } from "../domain/audit/audit-chain.ts";
import type { AuditRecord } from "../domain/audit/audit-event.ts";
import type { AuditLogStore } from "../domain/audit/audit-log-store.ts";
import type { AuditFilter } from "../domain/audit/audit-filter.ts";
import type { Store } from "./mongo-store.ts";
import { ORDERED_INSERT_MAX } from "./ordered-insert.ts";

const DUPLICATE_KEY = 11000;
/** Most records one group commit of concurrent appends carries (written in inserts of ORDERED_INSERT_MAX). */
const MAX_GROUP = 1000;
/** Give up a write after this many lost races for the head (other instances won each time). */
const MAX_CONFLICTS = 200;

/**
 * An `audit_events` document: the record's fields, `_id` = the chain sequence number as 16 zero-padded
 * digits (so two writers can never both own a position, string order is sequence order, and FerretDB
 * answers a lookup by _id from its index — it scans the whole collection for a numeric _id), `eventId`
 * = the record's own id (recorderId:recorderSeq).
 */
interface AuditEventDocument extends Omit<SealedAuditRecord, "_id" | "seq"> {
  _id: string;
  eventId: string;
}

/** The `_id` of the event with sequence number `seq`. */
export function auditSeqKey(seq: number): string {
  return String(seq).padStart(16, "0");
}

/** The audit store: chained appends for the recorder, plus the reads of the audit service and tests. */
export interface MongoAuditStore extends AuditLogStore {
  /** The events of one request, in chain order. */
  findByRequestId(requestId: string): Promise<SealedAuditRecord[]>;
  /** How many events match (all fields optional; an empty filter counts everything). */
  count(filter?: { type?: string; requestId?: string; outcome?: AuditRecord["outcome"] }): Promise<number>;
}

/**
 * Stores audit records in `audit_events` as a hash chain. Concurrent appends in one process are grouped
 * and written in ordered inserts of at most ORDERED_INSERT_MAX; across processes the unique `_id`
 * decides who owns each position (see docs/audit-chain.md). Nothing here updates an event; only retention deletes, oldest first.
 */
export function createAuditStore(store: Store, sealer: ChainSealer): MongoAuditStore {
  const collection: Collection<AuditEventDocument> = store.db.collection<AuditEventDocument>("audit_events");
  let cachedHead: ChainHead | undefined;
  const written = new WeakSet<AuditRecord>();
  const attempted = new WeakSet<AuditRecord>();

  const readNewest = async () => {
    // Numbers only: a database from before the chain (schema 1) holds string ids, which are not part of it.
    const [doc] = await collection
      .find({ prevHash: { $exists: true } }, { projection: { _id: 1, hash: 1, time: 1 } })
      .sort({ _id: -1 })
      .limit(1)
      .toArray();
    return doc ? { seq: Number(doc._id), hash: doc.hash, time: doc.time } : undefined;
  };

  // `known` exists: walk up in growing steps until a position is free, then bisect. Positions are
  // filled contiguously (a writer inserts N+1 only once N exists), so the first free one is the head + 1.
  const probeFrom = async (known: number): Promise<ChainHead | undefined> => {
    const exists = async (seq: number) => (await collection.findOne({ _id: auditSeqKey(seq) }, { projection: { _id: 1 } })) !== null;
    let low = known;
    let step = 1;
    while (await exists(low + step)) {
      low += step;
      step *= 2;
    }
    let high = low + step; // free
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      if (await exists(mid)) low = mid;
      else high = mid;
    }
    const doc = await collection.findOne({ _id: auditSeqKey(low) }, { projection: { hash: 1, time: 1 } });
    return doc ? { seq: low, hash: doc.hash, time: doc.time } : await readNewest();
  };

  const chainStart = async () => {
    cachedHead ??= (await readNewest()) ?? (await startAnchor());
    return cachedHead;
  };
  // An empty log starts at genesis, or after the retention checkpoint when everything was swept.
  const startAnchor = async () => {
    const checkpoint = await store.db
      .collection<{ _id: number; hash: string }>("audit_checkpoints")
      .find({}, { projection: { hash: 1 } })
      .sort({ _id: -1 })
      .limit(1)
      .toArray();
    return checkpoint[0] ? { seq: checkpoint[0]._id, hash: checkpoint[0].hash } : { seq: 0, hash: "0".repeat(64) };
  };

  const writeGroup = async (records: AuditRecord[]) => {
    let pending = records.filter((record) => !written.has(record));
    // A record whose earlier write failed may have been stored anyway: look it up before chaining it again.
    const uncertain = pending.filter((record) => attempted.has(record));
    if (uncertain.length > 0) {
      const found = await collection.find({ eventId: { $in: uncertain.map((r) => r._id) } }, { projection: { eventId: 1 } }).toArray();
      const stored = new Set(found.map((doc) => doc.eventId));
      for (const record of uncertain) if (stored.has(record._id)) written.add(record);
      pending = pending.filter((record) => !written.has(record));
    }
    for (const record of pending) attempted.add(record);
    let conflicts = 0;
    while (pending.length > 0) {
      if (conflicts > MAX_CONFLICTS) throw new Error("audit chain: gave up after too many concurrent writers won the head");
      // At most ORDERED_INSERT_MAX at once: past it, FerretDB stores what follows a lost position.
      const chunk = pending.slice(0, ORDERED_INSERT_MAX);
      const chained = sealer.chain(chunk, await chainStart());
      try {
        await collection.insertMany(chained.map(toDocument), { ordered: true });
        for (const record of chunk) written.add(record);
        cachedHead = { seq: chained.at(-1)!.seq, hash: chained.at(-1)!.hash, time: chained.at(-1)!.time };
        pending = pending.slice(chunk.length);
      } catch (err) {
        conflicts++;
        if (!isDuplicateKey(err)) {
          cachedHead = undefined; // unknown what was stored: re-read the head before the next write
          throw err;
        }
        // Another writer owns a position we wanted. Which of ours were stored is looked up, not taken
        // from the error: FerretDB may report a conflict as a command error after storing a prefix.
        const stored = await collection.find({ eventId: { $in: chunk.map((r) => r._id) } }, { projection: { eventId: 1 } }).toArray();
        const storedIds = new Set(stored.map((doc) => doc.eventId));
        for (const record of pending) if (storedIds.has(record._id)) written.add(record);
        pending = pending.filter((record) => !written.has(record));
        // The first position we tried exists now (ours or theirs), so the head is there or above.
        cachedHead = await probeFrom(chained[0]!.seq);
      }
    }
  };

  const queue: Array<{ records: readonly AuditRecord[]; resolve: () => void; reject: (err: unknown) => void }> = [];
  let pumping = false;
  const pump = async () => {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length > 0) {
        const group: typeof queue = [];
        let size = 0;
        while (queue.length > 0 && (group.length === 0 || size + queue[0]!.records.length <= MAX_GROUP)) {
          const next = queue.shift()!;
          group.push(next);
          size += next.records.length;
        }
        try {
          await writeGroup(group.flatMap((entry) => [...entry.records]));
          for (const entry of group) entry.resolve();
        } catch (err) {
          for (const entry of group) entry.reject(err);
        }
      }
    } finally {
      pumping = false;
    }
  };

  return {
    append(records) {
      if (records.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        queue.push({ records, resolve, reject });
        void pump();
      });
    },

    async findByRequestId(requestId) {
      return (await collection.find({ requestId }).sort({ _id: 1 }).toArray()).map(fromDocument);
    },

    count(filter = {}) {
      return collection.countDocuments(filter);
    },

    async head() {
      // From what this process last wrote or saw, upwards by indexed lookups; a scan only the first time.
      const known = cachedHead ?? (await readNewest());
      return known && (await probeFrom(known.seq));
    },

    async next(afterSeq, limit) {
      const out: SealedAuditRecord[] = [];
      for (let seq = afterSeq + 1; out.length < limit; seq++) {
        const doc = await collection.findOne({ _id: auditSeqKey(seq) });
        if (!doc) break;
        out.push(fromDocument(doc));
      }
      return out;
    },

    async firstSeq() {
      const [doc] = await collection
        .find({}, { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .limit(1)
        .toArray();
      return doc === undefined ? undefined : Number(doc._id);
    },

    async range(fromSeq, toSeq, limit) {
      return (
        await collection
          .find({ _id: { $gte: auditSeqKey(fromSeq), $lte: auditSeqKey(Math.min(toSeq, 9_999_999_999_999_998)) } })
          .sort({ _id: 1 })
          .limit(limit)
          .toArray()
      ).map(fromDocument);
    },

    async get(seq) {
      const doc = await collection.findOne({ _id: auditSeqKey(seq) });
      return doc ? fromDocument(doc) : undefined;
    },

    async findSeqByHash(hash) {
      const doc = await collection.findOne({ hash }, { projection: { _id: 1 } });
      return doc ? Number(doc._id) : undefined;
    },

    async query(filter, options) {
      const base = toQuery(filter);
      const query = options.cursorSeq === undefined ? base : { $and: [base, { _id: options.order === "asc" ? { $gt: auditSeqKey(options.cursorSeq) } : { $lt: auditSeqKey(options.cursorSeq) } }] };
      const docs = await collection
        .find(query)
        .sort({ _id: options.order === "asc" ? 1 : -1 })
        .limit(options.limit)
        .toArray();
      return docs.map(fromDocument);
    },

    async scan(filter, limit) {
      return (await collection.find(toQuery(filter)).sort({ _id: 1 }).limit(limit).toArray()).map(fromDocument);
    },

    async deleteThrough(seq) {
      return (await collection.deleteMany({ _id: { $lte: auditSeqKey(seq) } })).deletedCount;
    },
  };
}

function toDocument(record: SealedAuditRecord): AuditEventDocument {
  const { _id, seq, ...rest } = record;
  return { _id: auditSeqKey(seq), eventId: _id, ...rest };
}

function fromDocument(doc: AuditEventDocument): SealedAuditRecord {
  const { _id, eventId, ...rest } = doc;
  return { ...rest, _id: eventId, seq: Number(_id) };
}

/** The index of the first document an ordered insert did not write, when the cause was a duplicate `_id`. */
function isDuplicateKey(err: unknown): boolean {
  if (err instanceof MongoBulkWriteError) {
    const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    return errors.length > 0 && errors.every((e) => e.code === DUPLICATE_KEY);
  }
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}

/** The filter as a MongoDB query. Every value was validated by the domain and is used as a value, never as an operator. */
function toQuery(filter: AuditFilter): Filter<AuditEventDocument> {
  const and: Array<Record<string, unknown>> = [];
  if (filter.startTime || filter.endTime) {
    and.push({ time: { ...(filter.startTime ? { $gte: filter.startTime } : {}), ...(filter.endTime ? { $lt: filter.endTime } : {}) } });
  }
  if (filter.types && filter.types.length > 0) {
    const exact = filter.types.filter((t) => !t.endsWith(".*"));
    const prefixes = filter.types.filter((t) => t.endsWith(".*")).map((t) => `^${t.slice(0, -1).replace(/\./g, "\\.")}`);
    and.push({ $or: [...(exact.length > 0 ? [{ type: { $in: exact } }] : []), ...prefixes.map((p) => ({ type: { $regex: p } }))] });
  }
  if (filter.outcome) and.push({ outcome: filter.outcome });
  if (filter.actorId) and.push({ "actor.id": filter.actorId });
  if (filter.targetId) and.push({ "target.id": filter.targetId });
  if (filter.ip) and.push({ ip: filter.ip });
  if (filter.method) and.push({ method: filter.method });
  if (filter.requestId) and.push({ requestId: filter.requestId });
  if (filter.involvingId) {
    const ids = [filter.involvingId, ...(filter.involvingAlso ?? [])];
    and.push({ $or: [{ "actor.id": { $in: ids } }, { "target.id": { $in: ids } }] });
  }
  if (filter.afterSeq !== undefined) and.push({ _id: { $gt: auditSeqKey(filter.afterSeq) } });
  return (and.length === 0 ? {} : and.length === 1 ? and[0]! : { $and: and }) as Filter<AuditEventDocument>;
}
