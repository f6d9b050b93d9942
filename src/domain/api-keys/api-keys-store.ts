import type { ApiKeyRecord, ApiKeyRevocation, ApiKeyRotation, ApiKeySettings, ApiKeyState, ApiKeyStatus, ApiKeyUsage } from "./api-key-record.ts";

/** Whose keys: one user's, or everyone's. */
export type KeyOwnerScope = { readonly ownerUserId: string } | { readonly all: true };

/** Position after the last key of a page (newest first). */
export interface KeyPageCursor {
  readonly createdAt: Date;
  readonly id: string;
}

/** What changed since a moment, for every instance's key cache. */
export interface ApiKeyChanges {
  readonly records: ApiKeyRecord[];
  readonly revocations: ApiKeyRevocation[];
  readonly rotations: ApiKeyRotation[];
}

/** A key to revoke, with its owner (revocations are stored per owner). */
export interface RevocationTarget {
  readonly keyId: string;
  readonly ownerUserId: string;
}

/**
 * Where API keys are kept: what the key lifecycle, the key cache and the usage tracker need, implemented
 * by src/store/api-keys-store.ts. Revocations and rotations are insert-only and keyed by the key id, so
 * "exactly once" is a unique insert, never a conditional update.
 */
export interface ApiKeysStore {
  insert(record: ApiKeyRecord): Promise<void>;
  findState(keyId: string): Promise<ApiKeyState | undefined>;
  /** A page of keys, newest first, after `after`. */
  list(options: { scope: KeyOwnerScope; status?: ApiKeyStatus; now: Date; pageSize: number; after?: KeyPageCursor }): Promise<ApiKeyState[]>;
  /** The ids of every key a user owns or owned. */
  keyIdsOf(ownerUserId: string): Promise<string[]>;
  /** Every key in scope (for stats and health checks, which look at all of them). */
  all(scope: KeyOwnerScope): Promise<ApiKeyState[]>;
  /** Keys of a user that are neither revoked nor rotated, for the per-user limit. */
  countLive(ownerUserId: string, now: Date): Promise<number>;
  /** Applies a settings change if the key is still at `expectedVersion`; false when it moved on. */
  update(keyId: string, expectedVersion: number, changes: ApiKeySettings, now: Date): Promise<boolean>;
  /** Revokes the keys that are not revoked yet; returns how many this call revoked. */
  revoke(targets: readonly RevocationTarget[], details: { reason: string; revokedBy: string; at: Date }): Promise<number>;
  /** Every not-yet-revoked key in scope, as revocation targets. */
  unrevoked(scope: KeyOwnerScope): Promise<RevocationTarget[]>;
  /** Claims the rotation of a key; false when another rotation claimed it first. */
  claimRotation(rotation: ApiKeyRotation): Promise<boolean>;
  /** Removes a key that never became usable (a rotation child whose claim lost the race). */
  deleteUnclaimed(keyId: string): Promise<void>;
  /** What changed at or after `since`. */
  changesSince(since: Date): Promise<ApiKeyChanges>;
  /** Writes this instance's running totals (absolute values, so a retried write is harmless). */
  saveUsage(instanceId: string, totals: ReadonlyMap<string, { count: number; lastUsedAt: Date; lastUsedIp: string }>, now: Date): Promise<void>;
  /** Usage summed over every instance, per key; `exceptInstance`'s documents are left out. */
  usageOf(keyIds: readonly string[], options?: { exceptInstance?: string }): Promise<Map<string, ApiKeyUsage>>;
}
