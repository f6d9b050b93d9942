import { MongoBulkWriteError, MongoServerError, type Collection, type Filter } from "mongodb";
import {
  combineUsage,
  type ApiKeyRecord,
  type ApiKeyRevocation,
  type ApiKeyRotation,
  type ApiKeySettings,
  type ApiKeyState,
  type ApiKeyStatus,
  type ApiKeyUsage,
} from "../domain/api-keys/api-key-record.ts";
import type { ApiKeyChanges, ApiKeysStore, KeyOwnerScope, KeyPageCursor, RevocationTarget } from "../domain/api-keys/api-keys-store.ts";
import type { Store } from "./mongo-store.ts";

const DUPLICATE_KEY = 11000;

type UsageDocument = { _id: string; keyId: string; count: number; lastUsedAt: Date; lastUsedIp: string; updatedAt: Date };

/**
 * API keys over four collections: `api_keys` (settings, updated only by UpdateApiKey),
 * `api_key_revocations` and `api_key_rotations` (insert-only, keyed by key id: a duplicate insert is the
 * atomic "someone already did it" that FerretDB's non-atomic conditional updates cannot give), and
 * `api_key_usage` (one document per key per server instance, written only by that instance).
 */
export function createApiKeysStore(store: Store): ApiKeysStore {
  const keys: Collection<ApiKeyRecord> = store.db.collection<ApiKeyRecord>("api_keys");
  const revocations: Collection<ApiKeyRevocation> = store.db.collection<ApiKeyRevocation>("api_key_revocations");
  const rotations: Collection<ApiKeyRotation> = store.db.collection<ApiKeyRotation>("api_key_rotations");
  const usage: Collection<UsageDocument> = store.db.collection<UsageDocument>("api_key_usage");

  const ownerFilter = (scope: KeyOwnerScope): Filter<ApiKeyRecord> => ("all" in scope ? {} : { ownerUserId: scope.ownerUserId });

  const statesOf = async (records: ApiKeyRecord[]): Promise<ApiKeyState[]> => {
    if (records.length === 0) return [];
    const ids = records.map((r) => r._id);
    const [revoked, rotated] = await Promise.all([revocations.find({ _id: { $in: ids } }).toArray(), rotations.find({ _id: { $in: ids } }).toArray()]);
    const revokedById = new Map(revoked.map((r) => [r._id, r]));
    const rotatedById = new Map(rotated.map((r) => [r._id, r]));
    return records.map((record) => ({ record, revocation: revokedById.get(record._id), rotation: rotatedById.get(record._id) }));
  };

  // Status is derived from three collections; as a query it becomes id sets plus an expiry condition.
  const statusFilter = async (scope: KeyOwnerScope, status: ApiKeyStatus | undefined, now: Date): Promise<Filter<ApiKeyRecord>> => {
    if (status === undefined) return {};
    const owner = "all" in scope ? {} : { ownerUserId: scope.ownerUserId };
    const revokedIds = (await revocations.find(owner, { projection: { _id: 1 } }).toArray()).map((r) => r._id);
    if (status === "revoked") return { _id: { $in: revokedIds } };
    const rotatedIds = (await rotations.find(owner, { projection: { _id: 1 } }).toArray()).map((r) => r._id);
    if (status === "rotated") return { _id: { $in: rotatedIds, $nin: revokedIds } };
    const live = { _id: { $nin: [...revokedIds, ...rotatedIds] } };
    if (status === "expired") return { ...live, expiresAt: { $lte: now } };
    return { ...live, $or: [{ expiresAt: { $exists: false } }, { expiresAt: { $gt: now } }] };
  };

  return {
    async insert(record: ApiKeyRecord): Promise<void> {
      await keys.insertOne(record);
    },

    async findState(keyId: string): Promise<ApiKeyState | undefined> {
      const [record, revocation, rotation] = await Promise.all([keys.findOne({ _id: keyId }), revocations.findOne({ _id: keyId }), rotations.findOne({ _id: keyId })]);
      return record ? { record, revocation: revocation ?? undefined, rotation: rotation ?? undefined } : undefined;
    },

    /** A page of keys, newest first, after `cursor`. */
    async list(options: { scope: KeyOwnerScope; status?: ApiKeyStatus; now: Date; pageSize: number; after?: KeyPageCursor }): Promise<ApiKeyState[]> {
      const conditions: Filter<ApiKeyRecord>[] = [ownerFilter(options.scope), await statusFilter(options.scope, options.status, options.now)];
      if (options.after) {
        const { createdAt, id } = options.after;
        conditions.push({ $or: [{ createdAt: { $lt: createdAt } }, { createdAt, _id: { $lt: id } }] });
      }
      const records = await keys.find({ $and: conditions }).sort({ createdAt: -1, _id: -1 }).limit(options.pageSize).toArray();
      return statesOf(records);
    },

    /** The ids of every key a user owns or owned. */
    async keyIdsOf(ownerUserId: string): Promise<string[]> {
      return (await keys.find({ ownerUserId }, { projection: { _id: 1 } }).toArray()).map((k) => k._id);
    },

    /** Every key in scope (for stats and health checks, which look at all of them). */
    async all(scope: KeyOwnerScope): Promise<ApiKeyState[]> {
      return statesOf(await keys.find(ownerFilter(scope)).toArray());
    },

    /** Keys of a user that are neither revoked nor rotated, for the per-user limit. */
    async countLive(ownerUserId: string, now: Date): Promise<number> {
      return keys.countDocuments({ $and: [{ ownerUserId }, await statusFilter({ ownerUserId }, "active", now)] });
    },

    /**
     * Applies a settings change if the key is still at `expectedVersion`. On MongoDB the version check
     * makes concurrent updates of one key exclusive; FerretDB 1.x does not apply the filter atomically,
     * so there the last of two simultaneous updates wins (revocation and rotation are unaffected: they
     * are separate documents).
     */
    async update(keyId: string, expectedVersion: number, changes: ApiKeySettings, now: Date): Promise<boolean> {
      const result = await keys.updateOne({ _id: keyId, version: expectedVersion }, { $set: { ...changes, version: expectedVersion + 1, updatedAt: now } });
      return result.modifiedCount === 1;
    },

    /** Revokes the keys that are not revoked yet; returns how many this call revoked. */
    async revoke(targets: readonly RevocationTarget[], details: { reason: string; revokedBy: string; at: Date }): Promise<number> {
      if (targets.length === 0) return 0;
      const documents = targets.map((t) => ({ _id: t.keyId, ownerUserId: t.ownerUserId, revokedAt: details.at, reason: details.reason, revokedBy: details.revokedBy }));
      try {
        const result = await revocations.insertMany(documents, { ordered: false });
        return result.insertedCount;
      } catch (err) {
        if (err instanceof MongoBulkWriteError && duplicatesOnly(err)) return err.result.insertedCount;
        throw err;
      }
    },

    /** Every not-yet-revoked key in scope, as revocation targets. */
    async unrevoked(scope: KeyOwnerScope): Promise<RevocationTarget[]> {
      const owner = "all" in scope ? {} : { ownerUserId: scope.ownerUserId };
      const revokedIds = (await revocations.find(owner, { projection: { _id: 1 } }).toArray()).map((r) => r._id);
      const live = await keys.find({ ...owner, _id: { $nin: revokedIds } }, { projection: { _id: 1, ownerUserId: 1 } }).toArray();
      return live.map((k) => ({ keyId: k._id, ownerUserId: k.ownerUserId }));
    },

    /** Claims the rotation of a key; false when another rotation claimed it first. */
    async claimRotation(rotation: ApiKeyRotation): Promise<boolean> {
      try {
        await rotations.insertOne(rotation);
        return true;
      } catch (err) {
        if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) return false;
        throw err;
      }
    },

    /** Removes a key that never became usable (a rotation child whose claim lost the race). */
    async deleteUnclaimed(keyId: string): Promise<void> {
      await keys.deleteOne({ _id: keyId });
    },

    /** What changed at or after `since`, for every instance's key cache. */
    async changesSince(since: Date): Promise<ApiKeyChanges> {
      const [records, revoked, rotated] = await Promise.all([
        keys.find({ updatedAt: { $gte: since } }).toArray(),
        revocations.find({ revokedAt: { $gte: since } }).toArray(),
        rotations.find({ rotatedAt: { $gte: since } }).toArray(),
      ]);
      return { records, revocations: revoked, rotations: rotated };
    },

    /**
     * Writes this instance's running totals (absolute values, so a retried write is harmless). One
     * document per key and instance, written only by that instance: no concurrent update to lose.
     */
    async saveUsage(instanceId: string, totals: ReadonlyMap<string, { count: number; lastUsedAt: Date; lastUsedIp: string }>, now: Date): Promise<void> {
      if (totals.size === 0) return;
      await usage.bulkWrite(
        [...totals].map(([keyId, t]) => ({
          replaceOne: { filter: { _id: `${keyId}:${instanceId}` }, replacement: { keyId, count: t.count, lastUsedAt: t.lastUsedAt, lastUsedIp: t.lastUsedIp, updatedAt: now }, upsert: true },
        })),
        { ordered: false },
      );
    },

    /** Usage summed over every instance, per key; `exceptInstance`'s documents are left out (its caller knows better). */
    async usageOf(keyIds: readonly string[], options: { exceptInstance?: string } = {}): Promise<Map<string, ApiKeyUsage>> {
      const out = new Map<string, ApiKeyUsage>();
      if (keyIds.length === 0) return out;
      const skip = options.exceptInstance === undefined ? undefined : `:${options.exceptInstance}`;
      for (const doc of await usage.find({ keyId: { $in: [...keyIds] } }).toArray()) {
        if (skip !== undefined && doc._id.endsWith(skip)) continue;
        out.set(doc.keyId, combineUsage(out.get(doc.keyId), doc));
      }
      return out;
    },
  };
}

function duplicatesOnly(err: MongoBulkWriteError): boolean {
  const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
  return errors.every((e) => e.code === DUPLICATE_KEY);
}
