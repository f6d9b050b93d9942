import { MongoBulkWriteError, MongoServerError, type Collection } from "mongodb";
import type { AuditRecord, AuditStore } from "../domain/audit/audit-event.ts";
import type { Store } from "./mongo-store.ts";

const DUPLICATE_KEY = 11000;

/** The audit store: appends for the recorder, plus the few reads tests and tools need. */
export interface MongoAuditStore extends AuditStore {
  /** The events of one request, in the order they were recorded. */
  findByRequestId(requestId: string): Promise<AuditRecord[]>;
  /** How many events match (all fields optional; an empty filter counts everything). */
  count(filter?: { type?: string; requestId?: string; outcome?: AuditRecord["outcome"] }): Promise<number>;
}

/**
 * Stores audit records in `audit_events`, one document per record exactly as the domain shaped it.
 * Nothing here updates or deletes: the collection is append-only by construction.
 */
export function createAuditStore(store: Store): MongoAuditStore {
  const collection: Collection<AuditRecord> = store.db.collection<AuditRecord>("audit_events");
  return {
    async append(records) {
      if (records.length === 0) return;
      try {
        await collection.insertMany([...records], { ordered: true });
      } catch (err) {
        if (!isDuplicateKeyOnly(err)) throw err;
        // An earlier attempt at this batch wrote a prefix before failing. The _ids identify events, so the
        // duplicates are those same events: write the rest and skip what is already there.
        await collection.insertMany([...records], { ordered: false }).catch((retryErr: unknown) => {
          if (!isDuplicateKeyOnly(retryErr)) throw retryErr;
        });
      }
    },

    findByRequestId(requestId) {
      return collection.find({ requestId }).sort({ time: 1, recorderSeq: 1 }).toArray();
    },

    count(filter = {}) {
      return collection.countDocuments(filter);
    },
  };
}

function isDuplicateKeyOnly(err: unknown): boolean {
  if (err instanceof MongoBulkWriteError) {
    const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    return errors.length > 0 && errors.every((e) => e.code === DUPLICATE_KEY);
  }
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}
