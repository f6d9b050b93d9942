/** A key's rate-limit tier: its budget relative to the configured limits. */
export type RateLimitTier = "basic" | "standard" | "premium";

/** Budget multiplier per tier, applied to every rate-limit class. */
export const TIER_RATE_SCALE: Readonly<Record<RateLimitTier, number>> = { basic: 0.25, standard: 1, premium: 4 };

export type ApiKeyStatus = "active" | "rotated" | "revoked" | "expired";

/**
 * The stored settings of a key (collection `api_keys`). Revocation and rotation are NOT fields here:
 * they live in insert-only collections keyed by the key id, so that no concurrent write can undo them
 * (FerretDB 1.x applies updates as read-modify-write of the whole document).
 */
export interface ApiKeyRecord {
  readonly _id: string;
  readonly ownerUserId: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly tier: RateLimitTier;
  readonly allowedCidrs: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Hex HMAC-SHA-256 of the secret under the server's pepper. */
  readonly secretHash: string;
  readonly createdAt: Date;
  /** Undefined: never expires (only when policy allows). */
  readonly expiresAt?: Date;
  /** The key this one replaced by rotation. */
  readonly parentKeyId?: string;
  /** AI token budgets (input plus output tokens per UTC day and month); absent fields are no limit. */
  readonly tokenBudget?: TokenBudgetSettings;
  /** Bumped by every settings change. */
  readonly version: number;
  /** Moves with every change, so other instances' pollers see it. */
  readonly updatedAt: Date;
}

/** The settings UpdateApiKey may change. */
export type ApiKeySettings = { -readonly [K in "name" | "scopes" | "tier" | "allowedCidrs" | "metadata" | "tokenBudget"]?: ApiKeyRecord[K] };

/** A key's token budgets as stored. */
export interface TokenBudgetSettings {
  readonly perDay?: number;
  readonly perMonth?: number;
}

/** A key's AI use over every instance: queries and tokens in all, and tokens spent in the current budget periods. */
export interface ApiKeyAiUsage {
  readonly queries: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** The provider's time, summed over the key's queries. */
  readonly latencyMs: number;
  readonly spentToday: number;
  readonly spentThisMonth: number;
}

/** AI use as the key service shows it; implemented by the AI usage ledger (src/app/ai.ts wires it). */
export interface AiUsageReader {
  /** Per key id; keys never used for AI are absent. */
  keyUsage(keyIds: readonly string[], at: Date): Promise<Map<string, ApiKeyAiUsage>>;
  /** Summed over one user's queries (sessions and keys), or everyone's. */
  userUsage(scope: { readonly ownerUserId: string } | { readonly all: true }): Promise<{ queries: number; inputTokens: number; outputTokens: number; latencyMs: number }>;
}

/** `api_key_revocations`, _id = key id: the first revocation wins and none is ever lost. */
export interface ApiKeyRevocation {
  readonly _id: string;
  readonly ownerUserId: string;
  readonly revokedAt: Date;
  readonly reason: string;
  /** Who revoked it: a user id, or "system". */
  readonly revokedBy: string;
}

/** `api_key_rotations`, _id = the OLD key's id: inserting it is how exactly one rotation wins. */
export interface ApiKeyRotation {
  readonly _id: string;
  readonly ownerUserId: string;
  readonly childKeyId: string;
  readonly rotatedAt: Date;
  /** The old key is accepted until then (equal to rotatedAt for no grace). */
  readonly graceExpiresAt: Date;
}

/** Everything that decides whether a key works. */
export interface ApiKeyState {
  readonly record: ApiKeyRecord;
  readonly revocation?: ApiKeyRevocation | undefined;
  readonly rotation?: ApiKeyRotation | undefined;
}

/** Aggregated use of a key over every instance. */
export interface ApiKeyUsage {
  readonly count: number;
  readonly lastUsedAt?: Date | undefined;
  readonly lastUsedIp?: string | undefined;
}

/** Two instances' usage of one key as one: counts add up, the latest use wins. */
export function combineUsage(a: ApiKeyUsage | undefined, b: ApiKeyUsage): ApiKeyUsage {
  if (!a) return b;
  const newer = !a.lastUsedAt || (b.lastUsedAt !== undefined && b.lastUsedAt > a.lastUsedAt);
  return { count: a.count + b.count, lastUsedAt: newer ? b.lastUsedAt : a.lastUsedAt, lastUsedIp: newer ? b.lastUsedIp : a.lastUsedIp };
}

/** The lifecycle state at `now`. A rotated key stays `rotated`, in and after its grace period. */
export function statusOf(state: ApiKeyState, now: Date): ApiKeyStatus {
  if (state.revocation) return "revoked";
  if (state.rotation) return "rotated";
  if (state.record.expiresAt && state.record.expiresAt.getTime() <= now.getTime()) return "expired";
  return "active";
}

/** Why a key cannot be used now, or undefined when it can (active, or rotated within its grace). */
export function unusableReason(state: ApiKeyState, now: Date): "revoked" | "rotated" | "expired" | undefined {
  if (state.revocation) return "revoked";
  if (state.record.expiresAt && state.record.expiresAt.getTime() <= now.getTime()) return "expired";
  if (state.rotation && state.rotation.graceExpiresAt.getTime() <= now.getTime()) return "rotated";
  return undefined;
}
