import { MongoServerError, type Collection } from "mongodb";
import type { JWK } from "jose";
import type { PublishedSigningKey, SigningKeysStore } from "../domain/tokens/signing-keys.ts";
import type { Store } from "./mongo-store.ts";

export type { PublishedSigningKey, SigningKeysStore } from "../domain/tokens/signing-keys.ts";

const DUPLICATE_KEY = 11000;

interface SigningKeyDocument {
  _id: string;
  publicJwk: JWK;
  createdAt: Date;
  retiredAt?: Date;
  verifyUntil?: Date;
}

/**
 * Stores the public halves of signing keys in `signing_keys`, one document per kid. Private key material
 * never reaches this module's callers' documents: the domain passes public members only.
 */
export function createSigningKeysStore(store: Store): SigningKeysStore {
  const keys: Collection<SigningKeyDocument> = store.db.collection<SigningKeyDocument>("signing_keys");
  return {
    async publish(key) {
      // $setOnInsert: publishing again at every start must not overwrite a retirement.
      await keys.updateOne({ _id: String(key.kid) }, { $setOnInsert: { publicJwk: key.publicJwk, createdAt: key.createdAt } }, { upsert: true }).catch((err: unknown) => {
        // Two instances publishing the same key at once: the other one won, which is the same result.
        if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
      });
    },

    async retire(kid, retiredAt, verifyUntil) {
      const result = await keys.updateOne({ _id: String(kid), retiredAt: { $exists: false } }, { $set: { retiredAt, verifyUntil } });
      return result.modifiedCount === 1;
    },

    async list() {
      const docs = await keys.find({}).toArray();
      return docs.map(
        (doc): PublishedSigningKey => ({
          kid: doc._id,
          publicJwk: doc.publicJwk,
          createdAt: doc.createdAt,
          ...(doc.retiredAt ? { retiredAt: doc.retiredAt } : {}),
          ...(doc.verifyUntil ? { verifyUntil: doc.verifyUntil } : {}),
        }),
      );
    },
  };
}
