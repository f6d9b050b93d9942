import { randomUUID } from "node:crypto";
import type { Collection } from "mongodb";
import type { LoginThrottleStore } from "../domain/auth/login-throttle.ts";
import type { Store } from "./mongo-store.ts";

export type { LoginThrottleStore } from "../domain/auth/login-throttle.ts";

/** One failed sign-in: `key` is `user:<usernameKey>` or `ip:<address>`. */
interface FailureDocument {
  _id: string;
  key: string;
  at: Date;
}

/**
 * Failed sign-ins in `login_throttle`, one inserted document per failure and key. Nothing is ever
 * updated in place (see `LoginThrottleStore` for why), so instances sharing the database count every
 * failure, however many arrive at once.
 */
export function createLoginThrottleStore(store: Store): LoginThrottleStore {
  const failures: Collection<FailureDocument> = store.db.collection<FailureDocument>("login_throttle");

  return {
    async recentFailures(key, limit) {
      const docs = await failures
        .find({ key: String(key) }, { projection: { at: 1 } })
        .sort({ key: 1, at: -1 })
        .limit(limit)
        .toArray();
      return docs.map((doc) => doc.at);
    },

    async addFailure(key, at) {
      await failures.insertOne({ _id: randomUUID(), key: String(key), at });
    },

    async trim(key, keep) {
      const [oldestKept] = await failures
        .find({ key: String(key) }, { projection: { at: 1 } })
        .sort({ key: 1, at: -1 })
        .skip(keep - 1)
        .limit(1)
        .toArray();
      if (oldestKept) await failures.deleteMany({ key: String(key), at: { $lt: oldestKept.at } });
    },

    async clear(key) {
      await failures.deleteMany({ key: String(key) });
    },

    async deleteBefore(before) {
      await failures.deleteMany({ at: { $lt: before } });
    },
  };
}
