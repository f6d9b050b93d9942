import { MongoServerError } from "mongodb";
import type { Store } from "./mongo-store.ts";
import { META_COLLECTION } from "./schema.ts";

const DUPLICATE_KEY = 11000;

/**
 * Fingerprints of the secret keys every instance sharing the database must share, in `meta` as
 * `{ _id: "key_fingerprint:<name>", fingerprint }`. The first instance records them; the insert is
 * atomic, so concurrent first starts agree on one.
 */
export function createKeyFingerprintsStore(store: Store) {
  const meta = store.db.collection<{ _id: string; fingerprint: string; recordedAt: Date }>(META_COLLECTION);
  return {
    /** Records `fingerprint` under `name` unless one is there; returns the one that is recorded. */
    async recordOrGet(name: string, fingerprint: string): Promise<string> {
      const _id = `key_fingerprint:${name}`;
      try {
        await meta.insertOne({ _id, fingerprint, recordedAt: new Date() });
        return fingerprint;
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
        const existing = await meta.findOne({ _id });
        return existing?.fingerprint ?? fingerprint;
      }
    },
  };
}
