import { MongoServerError, type Collection } from "mongodb";
import type { RefreshTokenRecord, RefreshTokensStore } from "../domain/sessions/sessions.ts";
import type { Store } from "./mongo-store.ts";

export type { RefreshTokenRecord, RefreshTokensStore } from "../domain/sessions/sessions.ts";

const DUPLICATE_KEY = 11000;

interface RefreshTokenDocument {
  /** Hex SHA-256 of the token; the token itself is never stored. */
  _id: string;
  sessionId: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  /** Copied from the claim by the rotation that won it, for people reading the data. */
  usedAt?: Date;
}

/**
 * The claim that spends a token, insert-only, keyed by the token's hash. FerretDB 1.x's conditional
 * updates are not atomic (two `usedAt: absent` updates can both match), but of two inserts with one
 * _id exactly one succeeds: that is what makes a refresh token single-use.
 */
interface ClaimDocument {
  _id: string;
  sessionId: string;
  claimedAt: Date;
  /** The token's expiry, so the sweep can drop the claim with the token. */
  expiresAt: Date;
}

// Used tokens are kept a day past expiry too: a replay in that window is still recognised as one.
const SWEEP_GRACE_MS = 24 * 60 * 60 * 1000;

/** The refresh-token store, plus the sweep a periodic job runs (FerretDB has no TTL index). */
export interface MongoRefreshTokensStore extends RefreshTokensStore {
  /** Deletes tokens (and their claims) that expired more than a day before `now`; returns how many tokens. */
  sweepExpired(now: Date): Promise<number>;
}

/** Stores refresh-token hashes in `refresh_tokens` and their claims in `refresh_token_claims`. */
export function createRefreshTokensStore(store: Store): MongoRefreshTokensStore {
  const tokens: Collection<RefreshTokenDocument> = store.db.collection<RefreshTokenDocument>("refresh_tokens");
  const claims: Collection<ClaimDocument> = store.db.collection<ClaimDocument>("refresh_token_claims");

  return {
    async insert(token) {
      const { hash, usedAt: _usedAt, ...rest } = token;
      await tokens.insertOne({ _id: String(hash), ...rest });
    },

    async find(hash) {
      const doc = await tokens.findOne({ _id: String(hash) });
      if (!doc) return undefined;
      const claim = await claims.findOne({ _id: doc._id });
      return toRecord(doc, claim?.claimedAt);
    },

    async claim(hash, at) {
      const doc = await tokens.findOne({ _id: String(hash) });
      if (!doc) return { outcome: "invalid" };
      if (doc.expiresAt.getTime() <= at.getTime()) {
        // Expired: refused either way, but a replay of a spent token is still a replay.
        const earlier = await claims.findOne({ _id: doc._id });
        return earlier ? { outcome: "used", token: toRecord(doc, earlier.claimedAt) } : { outcome: "invalid" };
      }
      try {
        await claims.insertOne({ _id: doc._id, sessionId: doc.sessionId, claimedAt: at, expiresAt: doc.expiresAt });
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
        const earlier = await claims.findOne({ _id: doc._id });
        return { outcome: "used", token: toRecord(doc, earlier?.claimedAt ?? at) };
      }
      // Only the winner writes here, so this update has no concurrent writer to lose against.
      await tokens.updateOne({ _id: doc._id }, { $set: { usedAt: at } });
      return { outcome: "claimed", token: toRecord(doc, undefined) };
    },

    async sweepExpired(now) {
      const horizon = new Date(now.getTime() - SWEEP_GRACE_MS);
      const result = await tokens.deleteMany({ expiresAt: { $lt: horizon } });
      await claims.deleteMany({ expiresAt: { $lt: horizon } });
      return result.deletedCount;
    },
  };
}

function toRecord(doc: RefreshTokenDocument, usedAt: Date | undefined): RefreshTokenRecord {
  const { _id, usedAt: _stored, ...rest } = doc;
  return { hash: _id, ...rest, ...(usedAt ? { usedAt } : {}) };
}
