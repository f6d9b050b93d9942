import { MongoServerError, type Collection, type Filter, type UpdateFilter } from "mongodb";
import type { Role } from "../domain/permissions.ts";
import { DomainError } from "../domain/errors.ts";
import type { UserListQuery, UserRecord, UsersStore } from "../domain/users/user-record.ts";
import type { Store } from "./mongo-store.ts";
import { META_COLLECTION, USER_CLAIMS_COLLECTION } from "./schema.ts";

export type { UserListQuery, UserPatch, UserRecord, UsersStore } from "../domain/users/user-record.ts";

const DUPLICATE_KEY = 11000;
/** The `meta` document that records which bootstrap-owner run created (or is creating) the first owner. */
const BOOTSTRAP_CLAIM_ID = "bootstrap-owner";
// The poller's feed is bounded: a burst larger than this is picked up on its next round.
const MAX_UPDATED_SINCE = 1000;

/**
 * Stores users in `users`. Filters are built here from typed strings and booleans — `String(id)`
 * rather than the caller's value — so an object such as `{ $ne: "" }` can never act as a query operator.
 */
export function createUsersStore(store: Store): UsersStore {
  const users: Collection<UserRecord> = store.db.collection<UserRecord>("users");
  const meta = store.db.collection<{ _id: string; userId: string; at: Date }>(META_COLLECTION);
  const claims = store.db.collection<{ _id: string; userId: string; at: Date }>(USER_CLAIMS_COLLECTION);

  const byId = (id: string): Filter<UserRecord> => ({ _id: String(id) });

  return {
    async insert(user) {
      try {
        await users.insertOne({ ...user });
      } catch (err) {
        if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) throw new DomainError("already_exists", "username is taken");
        throw err;
      }
    },

    async findById(id) {
      return (await users.findOne(byId(id))) ?? undefined;
    },

    async findByUsernameKey(usernameKey) {
      return (await users.findOne({ usernameKey: String(usernameKey) })) ?? undefined;
    },

    list(query: UserListQuery) {
      const filter: Filter<UserRecord> = {};
      if (query.role !== undefined) filter.role = String(query.role) as Role;
      if (query.disabled !== undefined) filter.disabled = query.disabled === true;
      if (query.afterId !== undefined) filter._id = { $gt: String(query.afterId) };
      return users
        .find(filter)
        .sort({ _id: 1 })
        .limit(Math.max(1, Math.trunc(query.pageSize)))
        .toArray();
    },

    countActiveOwners() {
      return users.countDocuments({ role: "owner", disabled: false });
    },

    async anyOwnerExists() {
      return (await users.findOne({ role: "owner" }, { projection: { _id: 1 } })) !== null;
    },

    async claimBootstrap(userId, at) {
      try {
        await meta.insertOne({ _id: BOOTSTRAP_CLAIM_ID, userId: String(userId), at });
        return "claimed";
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
      }
      const held = await meta.findOne({ _id: BOOTSTRAP_CLAIM_ID });
      // Released between our insert and this read: report it as held just now, so the caller retries later.
      return held ? { userId: held.userId, at: held.at } : { userId: "", at: new Date() };
    },

    async releaseBootstrap(userId) {
      await meta.deleteOne({ _id: BOOTSTRAP_CLAIM_ID, userId: String(userId) });
    },

    async claimIdentifier(id, userId, at) {
      try {
        await claims.insertOne({ _id: String(id), userId: String(userId), at });
        return "claimed";
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
      }
      const held = await claims.findOne({ _id: String(id) });
      // Released between our insert and this read: report it as held just now, so it is respected.
      return held ? { userId: held.userId, at: held.at } : { userId: "", at: new Date() };
    },

    async releaseIdentifier(id, userId) {
      await claims.deleteOne({ _id: String(id), userId: String(userId) });
    },

    async hasIdentifierClaim(id) {
      return (await claims.findOne({ _id: String(id) }, { projection: { _id: 1 } })) !== null;
    },

    async update(id, patch, expected) {
      const filter: Filter<UserRecord> = byId(id);
      if (expected) {
        filter.role = String(expected.role) as Role;
        filter.disabled = expected.disabled === true;
      }
      const set: Partial<UserRecord> = { updatedAt: new Date() };
      if (patch.role !== undefined) set.role = String(patch.role) as Role;
      if (patch.disabled !== undefined) set.disabled = patch.disabled === true;
      if (typeof patch.email === "string") set.email = patch.email;
      const update: UpdateFilter<UserRecord> = { $set: set };
      if (patch.email === null) update.$unset = { email: "" };
      return (await users.findOneAndUpdate(filter, update, { returnDocument: "after" })) ?? undefined;
    },

    async setPasswordHash(id, passwordHash, passwordChangedAt) {
      const set: Partial<UserRecord> = { passwordHash: String(passwordHash), updatedAt: new Date() };
      if (passwordChangedAt) set.passwordChangedAt = passwordChangedAt;
      await users.updateOne(byId(id), { $set: set });
    },

    async touchLastLogin(id, at) {
      await users.updateOne(byId(id), { $set: { lastLoginAt: at } });
    },

    findUpdatedSince(since) {
      return users
        .find({ updatedAt: { $gte: since } })
        .sort({ updatedAt: 1, _id: 1 })
        .limit(MAX_UPDATED_SINCE)
        .toArray();
    },
  };
}
