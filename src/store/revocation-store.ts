import type { Collection } from "mongodb";
import type { RevocationStore } from "../domain/revocation/revocation-cache.ts";
import type { Store } from "./mongo-store.ts";

export type { RevocationStore } from "../domain/revocation/revocation-cache.ts";

interface RevokedSessionView {
  _id: string;
  revokedAt: Date;
}

interface UserStateView {
  _id: string;
  role: unknown;
  disabled: unknown;
}

/**
 * The revocation poller's reads: `session_revocations` (written by the sessions store) and the users'
 * `role`, `disabled` and `updatedAt`.
 * Projections keep each poll to the few fields it needs — never password hashes or anything else of a
 * user — since it runs several times a second on every instance.
 */
export function createRevocationStore(store: Store): RevocationStore {
  const revocations: Collection<RevokedSessionView> = store.db.collection<RevokedSessionView>("session_revocations");
  const users: Collection<UserStateView> = store.db.collection<UserStateView>("users");
  return {
    async revokedSessionsSince(since) {
      const docs = await revocations.find({ revokedAt: { $gte: since } }, { projection: { _id: 1, revokedAt: 1 } }).toArray();
      return docs.map((doc) => ({ sessionId: doc._id, revokedAt: doc.revokedAt }));
    },

    async userStates(since) {
      const filter = since === undefined ? {} : { updatedAt: { $gte: since } };
      const docs = await users.find(filter, { projection: { _id: 1, role: 1, disabled: 1 } }).toArray();
      return docs.map((doc) => ({ userId: String(doc._id), role: doc.role, disabled: doc.disabled }));
    },
  };
}
