import { MongoServerError, type Collection, type Filter } from "mongodb";
import type { CredentialRecord, CredentialStore } from "../domain/ai/credential-records.ts";
import { markChanged } from "./change-marks-store.ts";
import type { Store } from "./mongo-store.ts";

const DUPLICATE_KEY = 11000;

interface RotationLock {
  _id: string;
  holder: string;
  startedAt: Date;
}

/**
 * `provider_credentials` (one document per provider and name, envelope-encrypted by the domain: this
 * module never sees a secret), `provider_credential_locks` (the rotation lock, insert-only) and
 * `provider_credential_uses` (first-use claims, insert-only: the duplicate-key error is the "someone
 * else already did" that FerretDB's non-atomic conditional updates cannot give).
 */
export function createProviderCredentialsStore(store: Store): CredentialStore {
  const credentials: Collection<CredentialRecord> = store.db.collection<CredentialRecord>("provider_credentials");
  const locks: Collection<RotationLock> = store.db.collection<RotationLock>("provider_credential_locks");
  const uses: Collection<{ _id: string; at: Date }> = store.db.collection<{ _id: string; at: Date }>("provider_credential_uses");

  const insertOnce = async <T extends { _id: string }>(collection: Collection<T>, doc: T): Promise<boolean> => {
    try {
      await collection.insertOne(doc as never);
      return true;
    } catch (error) {
      if (error instanceof MongoServerError && error.code === DUPLICATE_KEY) return false;
      throw error;
    }
  };

  // Every instance caches the secrets in use and drops them when this topic's mark moves.
  const changedIf = async (done: boolean): Promise<boolean> => {
    if (done) await markChanged(store.db, "provider_credentials");
    return done;
  };

  return {
    insert: async (record) => changedIf(await insertOnce(credentials, record)),
    async replace(record) {
      const { _id, ...rest } = record;
      return changedIf((await credentials.replaceOne({ _id }, rest)).matchedCount === 1);
    },
    async find(id) {
      return (await credentials.findOne({ _id: id })) ?? undefined;
    },
    async list({ provider, after, limit }) {
      const conditions: Filter<CredentialRecord>[] = [];
      if (provider !== undefined) conditions.push({ provider });
      if (after) conditions.push({ $or: [{ provider: { $gt: after.provider } }, { provider: after.provider, name: { $gt: after.name } }] });
      return credentials
        .find(conditions.length > 0 ? { $and: conditions } : {})
        .sort({ provider: 1, name: 1 })
        .limit(limit)
        .toArray();
    },
    all: () => credentials.find({}).toArray(),
    async versions() {
      return credentials.find({}, { projection: { _id: 1, updatedAt: 1 } }).toArray();
    },
    async delete(id) {
      return changedIf((await credentials.deleteOne({ _id: id })).deletedCount === 1);
    },
    async rewrap(id, expectedWrappedKey, next) {
      return changedIf((await credentials.updateOne({ _id: id, wrappedKey: expectedWrappedKey }, { $set: next })).modifiedCount === 1);
    },
    async claimRotation(holder, now, staleMs) {
      if (await insertOnce(locks, { _id: "rotation", holder, startedAt: now })) return true;
      const current = await locks.findOne({ _id: "rotation" });
      if (current && now.getTime() - current.startedAt.getTime() < staleMs) return false;
      // Abandoned by an instance that died mid-rotation: remove exactly that lock, then race for a new one.
      if (current) await locks.deleteOne({ _id: "rotation", holder: current.holder });
      return insertOnce(locks, { _id: "rotation", holder, startedAt: now });
    },
    async releaseRotation(holder) {
      await locks.deleteOne({ _id: "rotation", holder });
    },
    claimFirstUse: (id, updatedAt) => insertOnce(uses, { _id: `${id}:${updatedAt.getTime()}`, at: new Date() }),
  };
}
