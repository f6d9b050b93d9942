import type { Collection } from "mongodb";
import type { RevocationStore } from "../domain/revocation/revocation-cache.ts";
import type { Store } from "./mongo-store.ts";

export type { RevocationStore } from "../domain/revocation/revocation-cache.ts";

interface RevokedSessionView {
  _id: string;
  revokedAt: Date;
}

interface UserView {
  _id: string;
  role: unknown;
  disabled: unknown;
  username: unknown;
  email: unknown;
  createdAt: unknown;
  updatedAt: unknown;
  lastLoginAt: unknown;
}

interface MfaFactorView {
  _id: string;
  enabled: unknown;
}

// The fields every instance holds of each user; never the password hash or anything else secret.
const USER_FIELDS = { _id: 1, role: 1, disabled: 1, username: 1, email: 1, createdAt: 1, updatedAt: 1, lastLoginAt: 1 } as const;

/**
 * The revocation cache's reads: `session_revocations` (written by the sessions store), the users' public
 * fields, and whether each user's MFA factor is enabled. Projections keep each read to the fields it
 * needs — never password hashes, TOTP secrets or backup codes.
 */
export function createRevocationStore(store: Store): RevocationStore {
  const revocations: Collection<RevokedSessionView> = store.db.collection<RevokedSessionView>("session_revocations");
  const users: Collection<UserView> = store.db.collection<UserView>("users");
  const factors: Collection<MfaFactorView> = store.db.collection<MfaFactorView>("mfa_factors");
  return {
    async revokedSessionsSince(since) {
      const docs = await revocations.find({ revokedAt: { $gte: since } }, { projection: { _id: 1, revokedAt: 1 } }).toArray();
      return docs.map((doc) => ({ sessionId: doc._id, revokedAt: doc.revokedAt }));
    },

    async userStates(since) {
      // lastLoginAt moves without updatedAt (a login changes nothing the authorisation state depends on).
      const filter = since === undefined ? {} : { $or: [{ updatedAt: { $gte: since } }, { lastLoginAt: { $gte: since } }] };
      const docs = await users.find(filter, { projection: USER_FIELDS }).toArray();
      return docs.map((doc) => ({ ...doc, userId: String(doc._id) }));
    },

    async mfaStates(since) {
      const docs = await factors.find(since === undefined ? {} : { updatedAt: { $gte: since } }, { projection: { _id: 1, enabled: 1 } }).toArray();
      return docs.map((doc) => ({ userId: String(doc._id), enabled: doc.enabled === true }));
    },
  };
}
