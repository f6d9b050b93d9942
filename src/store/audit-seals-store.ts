import { MongoServerError, type Collection } from "mongodb";
import type { AuditSealsStore, SignedChainPoint } from "../domain/audit/audit-log-store.ts";
import type { Store } from "./mongo-store.ts";

const DUPLICATE_KEY = 11000;

interface PointDocument {
  _id: number;
  hash: string;
  jws: string;
  at: Date;
}

/**
 * Signed points of the audit chain, insert-only and keyed by seq: `audit_heads` (signed heads, the
 * guard against truncation) and `audit_checkpoints` (where retention cut the log). A second signature
 * of the same seq is the same statement, so a duplicate insert is success.
 */
export function createAuditSealsStore(store: Store): AuditSealsStore {
  const heads = store.db.collection<PointDocument>("audit_heads");
  const checkpoints = store.db.collection<PointDocument>("audit_checkpoints");
  const insert = async (collection: Collection<PointDocument>, point: SignedChainPoint) => {
    await collection.insertOne({ _id: point.seq, hash: point.hash, jws: point.jws, at: point.at }).catch((err: unknown) => {
      if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
    });
  };
  const latest = async (collection: Collection<PointDocument>) => {
    const [doc] = await collection.find({}).sort({ _id: -1 }).limit(1).toArray();
    return doc ? { seq: doc._id, hash: doc.hash, jws: doc.jws, at: doc.at } : undefined;
  };
  return {
    saveHead: (point) => insert(heads, point),
    latestHead: () => latest(heads),
    saveCheckpoint: (point) => insert(checkpoints, point),
    latestCheckpoint: () => latest(checkpoints),
  };
}
