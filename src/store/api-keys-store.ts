import type { Store } from "./mongo-store.ts";

/**
 * API keys (collection `api_keys`). The full lifecycle arrives with the API-key service; emergency
 * revocation needs only this: every active key becomes revoked, with the reason and time.
 */
export function createApiKeysStore(store: Store, now: () => Date = () => new Date()) {
  const collection = store.db.collection("api_keys");
  return {
    async revokeAll(reason: string): Promise<number> {
      const at = now();
      const result = await collection.updateMany({ status: "active" }, { $set: { status: "revoked", revokedAt: at, revokeReason: reason, updatedAt: at } });
      return result.modifiedCount;
    },
  };
}
