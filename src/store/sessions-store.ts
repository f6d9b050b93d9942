import { MongoBulkWriteError, MongoServerError, type Collection, type Filter } from "mongodb";
import type { SessionRecord, SessionsStore } from "../domain/sessions/sessions.ts";
import type { Store } from "./mongo-store.ts";

export type { SessionRecord, SessionsStore } from "../domain/sessions/sessions.ts";

const DUPLICATE_KEY = 11000;

/** A session's own document: written at open, then only by the rotation holding its live token. */
interface SessionDocument {
  _id: string;
  userId: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  ip: string;
  userAgent: string;
}

/**
 * A revocation, insert-only, keyed by the session id. It lives apart from the session because FerretDB
 * 1.x updates by rewriting the whole document: a revocation stored in the session could be overwritten
 * by a rotation updating it at the same moment. A duplicate insert fails atomically, so the first
 * revocation stands and is never lost.
 */
interface RevocationDocument {
  _id: string;
  userId: string;
  revokedAt: Date;
  reason: string;
  /** Only for an id without a session (an exchanged API key's token): when that token expires. */
  tokenExpiresAt?: Date;
}

/** How long an expired session is kept before the sweep deletes it (for "why was I signed out?"). */
const SWEEP_GRACE_MS = 24 * 60 * 60 * 1000;

/** The sessions store, plus the sweep a periodic job runs (FerretDB has no TTL index). */
export interface MongoSessionsStore extends SessionsStore {
  /** Deletes sessions (and their revocations) whose expiry passed more than a day before `now`; returns how many. */
  sweepExpired(now: Date): Promise<number>;
}

/**
 * Stores sessions in `sessions` and their revocations in `session_revocations`. Ids are forced to
 * strings before they enter a filter, so a caller's object can never act as a query operator.
 */
export function createSessionsStore(store: Store): MongoSessionsStore {
  const sessions: Collection<SessionDocument> = store.db.collection<SessionDocument>("sessions");
  const revocations: Collection<RevocationDocument> = store.db.collection<RevocationDocument>("session_revocations");

  /** Revokes the given sessions; returns how many this call revoked (already revoked ones don't count). */
  const revokeSessions = async (targets: ReadonlyArray<{ _id: string; userId: string }>, reason: string, at: Date): Promise<number> => {
    if (targets.length === 0) return 0;
    const docs = targets.map((t): RevocationDocument => ({ _id: t._id, userId: t.userId, revokedAt: at, reason: String(reason) }));
    try {
      await revocations.insertMany(docs, { ordered: false });
      return docs.length;
    } catch (err) {
      const duplicates = duplicateKeyErrors(err);
      if (duplicates === undefined) throw err;
      return docs.length - duplicates;
    }
  };

  const withRevocations = async (docs: SessionDocument[]): Promise<SessionRecord[]> => {
    if (docs.length === 0) return [];
    const revoked = new Map((await revocations.find({ _id: { $in: docs.map((d) => d._id) } }).toArray()).map((r) => [r._id, r]));
    return docs.map((doc) => toRecord(doc, revoked.get(doc._id)));
  };

  const revokeMatching = async (filter: Filter<SessionDocument>, reason: string, at: Date, exceptId: string | undefined) => {
    // Sessions already expired need no revocation: their refresh tokens are dead and their access tokens too.
    const scoped: Filter<SessionDocument> = { ...filter, expiresAt: { $gt: at } };
    if (exceptId !== undefined) scoped._id = { $ne: String(exceptId) };
    const targets = await sessions.find(scoped, { projection: { _id: 1, userId: 1 } }).toArray();
    return revokeSessions(targets, reason, at);
  };

  return {
    async insert(session) {
      const { id, revokedAt: _revokedAt, revokeReason: _revokeReason, ...rest } = session;
      await sessions.insertOne({ _id: String(id), ...rest });
    },

    async get(id) {
      const doc = await sessions.findOne({ _id: String(id) });
      return doc ? (await withRevocations([doc]))[0] : undefined;
    },

    async touch(id, update) {
      const result = await sessions.updateOne(
        { _id: String(id) },
        { $set: { lastUsedAt: update.lastUsedAt, expiresAt: update.expiresAt, ip: String(update.ip), userAgent: String(update.userAgent) } },
      );
      return result.matchedCount === 1;
    },

    async revoke(id, reason, at) {
      const doc = await sessions.findOne({ _id: String(id) }, { projection: { _id: 1, userId: 1 } });
      return doc ? (await revokeSessions([doc], reason, at)) === 1 : false;
    },

    async revokeStandalone(id, userId, reason, at, expiresAt) {
      try {
        await revocations.insertOne({ _id: String(id), userId: String(userId), revokedAt: at, reason: String(reason), tokenExpiresAt: expiresAt });
        return true;
      } catch (err) {
        if (duplicateKeyErrors(err) !== undefined) return false;
        throw err;
      }
    },

    revokeAllForUser: (userId, reason, at, exceptId) => revokeMatching({ userId: String(userId) }, reason, at, exceptId),

    revokeAll: (reason, at, exceptId) => revokeMatching({}, reason, at, exceptId),

    async listActiveForUser(userId, now) {
      const docs = await sessions
        .find({ userId: String(userId), expiresAt: { $gt: now } })
        .sort({ lastUsedAt: -1 })
        .toArray();
      return (await withRevocations(docs)).filter((s) => s.revokedAt === undefined);
    },

    async sweepExpired(now) {
      // Revocations of exchanged tokens outlive nothing: their tokens are expired.
      await revocations.deleteMany({ tokenExpiresAt: { $lt: new Date(now.getTime() - SWEEP_GRACE_MS) } });
      const expired = await sessions.find({ expiresAt: { $lt: new Date(now.getTime() - SWEEP_GRACE_MS) } }, { projection: { _id: 1 } }).toArray();
      if (expired.length === 0) return 0;
      const ids = expired.map((d) => d._id);
      // Revocations first: a crash in between leaves a revoked-looking session rather than a resurrected one.
      await revocations.deleteMany({ _id: { $in: ids } });
      return (await sessions.deleteMany({ _id: { $in: ids } })).deletedCount;
    },
  };
}

/** The number of duplicate-key errors when they are the only errors of a write, else undefined. */
function duplicateKeyErrors(err: unknown): number | undefined {
  if (err instanceof MongoBulkWriteError) {
    const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    return errors.length > 0 && errors.every((e) => e.code === DUPLICATE_KEY) ? errors.length : undefined;
  }
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY ? 1 : undefined;
}

function toRecord(doc: SessionDocument, revocation: RevocationDocument | undefined): SessionRecord {
  const { _id, ...rest } = doc;
  return { id: _id, ...rest, ...(revocation ? { revokedAt: revocation.revokedAt, revokeReason: revocation.reason } : {}) };
}
