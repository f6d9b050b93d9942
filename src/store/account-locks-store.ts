import { MongoServerError } from "mongodb";
import type { AccountLocksStore } from "../domain/auth/account-locks.ts";
import type { Store } from "./mongo-store.ts";

interface LockDocument {
  _id: string;
  userId: string;
  until: Date;
  lockedVersion: Date;
}

/** Temporary account locks in `account_locks`, one insert-only document per lock. */
export function createAccountLocksStore(store: Store): AccountLocksStore {
  const locks = store.db.collection<LockDocument>("account_locks");
  return {
    async insert(lock) {
      await locks.insertOne({ _id: lock.id, userId: lock.userId, until: lock.until, lockedVersion: lock.lockedVersion }).catch((err: unknown) => {
        if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
      });
    },
    async due(now) {
      return (
        await locks
          .find({ until: { $lte: now } })
          .limit(100)
          .toArray()
      ).map((d) => ({ id: d._id, userId: d.userId, until: d.until, lockedVersion: d.lockedVersion }));
    },
    async remove(id) {
      await locks.deleteOne({ _id: id });
    },
  };
}
