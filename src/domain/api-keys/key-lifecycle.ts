import { ROLE_PERMISSIONS } from "../permissions.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import { resolvePageSize } from "../users/user-paging.ts";
import type { ApiKeyCache } from "./api-key-cache.ts";
import { statusOf, TIER_RATE_SCALE, type ApiKeyRecord, type ApiKeySettings, type ApiKeyStatus, type RateLimitTier } from "./api-key-record.ts";
import type { ApiKeysStore } from "./api-keys-store.ts";
import { normaliseCidrs } from "./client-networks.ts";
import { generateApiKey, hashSecret } from "./key-format.ts";
import { checkBudget, checkMetadata, checkName, checkScopes, decodeKeyPageToken, encodeKeyPageToken, type TokenBudgetChange } from "./key-input.ts";
import { createKeyRevocations, type ApiKeyRevocations } from "./key-revocations.ts";
import type { ApiKeyView, KeyViews, OwnerSelection } from "./key-views.ts";
import type { UserStateReader } from "../revocation/user-state.ts";

export interface ApiKeyPolicy {
  readonly prefix: string;
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
  readonly allowNoExpiry: boolean;
  readonly maxPerUser: number;
  /** The highest tier a caller without `users.manage` may give their own keys (a larger budget is a privilege). */
  readonly selfServiceTier: RateLimitTier;
}

/**
 * The API-key lifecycle: create, list, read, update, rotate and revoke (key-revocations.ts). A user acts on their own keys;
 * `users.manage` extends reads (audited) and revocation to other users' keys, revocation only as far
 * as the role hierarchy allows (`mayActOnUser`: an admin revokes plain users' keys, never an owner's or
 * another admin's). Nobody ever receives or shapes a credential that acts as another user: a key is
 * created for its caller only, and rotated or updated by its owner only. A key the caller may not see
 * answers NOT_FOUND, exactly like a key that does not exist; one they may see but not touch answers
 * PERMISSION_DENIED, audited. Every change is audited before it is reported, and applied to this
 * instance's key cache at once (other instances see it within a poll interval).
 */
export interface ApiKeyLifecycle extends ApiKeyRevocations {
  create(
    ctx: RequestContext,
    input: {
      name: string;
      scopes: readonly string[];
      expiresInMs?: number;
      noExpiry: boolean;
      tier?: RateLimitTier;
      allowedCidrs: readonly string[];
      metadata: Record<string, string>;
      tokenBudget?: TokenBudgetChange;
    },
  ): Promise<{ key: ApiKeyView; secret: string }>;
  list(ctx: RequestContext, input: OwnerSelection & { status?: ApiKeyStatus; pageSize?: number; pageToken?: string }): Promise<{ keys: ApiKeyView[]; nextPageToken: string }>;
  get(ctx: RequestContext, keyId: string): Promise<ApiKeyView>;
  update(
    ctx: RequestContext,
    keyId: string,
    changes: { name?: string; scopes?: readonly string[]; tier?: RateLimitTier; allowedCidrs?: readonly string[]; metadata?: Record<string, string>; tokenBudget?: TokenBudgetChange },
  ): Promise<ApiKeyView>;
  rotate(ctx: RequestContext, keyId: string, graceMs: number): Promise<{ key: ApiKeyView; secret: string; parentKeyId: string; graceExpiresAt: Date }>;
}

const DAY_MS = 86_400_000;
const MAX_GRACE_MS = DAY_MS;

export function createApiKeyLifecycle(deps: {
  store: ApiKeysStore;
  cache: ApiKeyCache;
  views: KeyViews;
  audit: AuditRecorder;
  /** The HMAC key of stored secrets. */
  pepper: Buffer;
  policy: ApiKeyPolicy;
  /** The current state of a user (role, disabled), for rotation. */
  userState: UserStateReader;
  now: () => Date;
}): ApiKeyLifecycle {
  const { policy, store, cache, now } = deps;
  const keyViews = deps.views;

  /** A tier the caller may assign: up to the self-service tier, anything with `users.manage`. */
  const checkTier = (ctx: RequestContext, tier: RateLimitTier): RateLimitTier => {
    if (TIER_RATE_SCALE[tier] > TIER_RATE_SCALE[policy.selfServiceTier] && !ctx.principal.permissions.has("users.manage")) {
      throw new DomainError("permission_denied", `the ${tier} rate-limit tier needs users.manage`);
    }
    return tier;
  };

  const lifetime = (input: { expiresInMs?: number | undefined; noExpiry: boolean }, at: Date): Date | undefined => {
    if (input.noExpiry) {
      if (input.expiresInMs !== undefined) throw new DomainError("invalid_argument", "no_expiry and expires_in exclude each other");
      if (!policy.allowNoExpiry) throw new DomainError("failed_precondition", "keys without expiry are not allowed by server policy");
      return undefined;
    }
    const ttl = input.expiresInMs ?? policy.defaultTtlMs;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new DomainError("invalid_argument", "expires_in must be positive");
    if (ttl > policy.maxTtlMs) throw new DomainError("invalid_argument", `expires_in must be at most ${Math.floor(policy.maxTtlMs / DAY_MS)} days`);
    return new Date(at.getTime() + ttl);
  };

  return {
    ...createKeyRevocations({ store, cache, views: keyViews, userState: deps.userState, now }),

    async create(ctx, input) {
      const name = checkName(input.name);
      const scopes = checkScopes(input.scopes, ctx.principal.permissions);
      const allowedCidrs = normaliseCidrs(input.allowedCidrs);
      const metadata = checkMetadata(input.metadata);
      const tier = checkTier(ctx, input.tier ?? "standard");
      const tokenBudget = checkBudget({}, input.tokenBudget ?? {}, false);
      const at = now();
      const expiresAt = lifetime(input, at);
      const ownerUserId = ctx.principal.userId;
      if ((await store.countLive(ownerUserId, at)) >= policy.maxPerUser) {
        throw new DomainError("failed_precondition", `a user may hold at most ${policy.maxPerUser} active keys; revoke some first`);
      }
      const { key, keyId, secret } = generateApiKey(policy.prefix);
      const record: ApiKeyRecord = {
        _id: keyId,
        ownerUserId,
        name,
        scopes,
        tier,
        allowedCidrs,
        metadata,
        secretHash: hashSecret(deps.pepper, secret).toString("hex"),
        createdAt: at,
        ...(expiresAt ? { expiresAt } : {}),
        ...(Object.keys(tokenBudget).length > 0 ? { tokenBudget } : {}),
        version: 1,
        updatedAt: at,
      };
      await store.insert(record);
      cache.noteRecord(record);
      await keyViews.recordChange(ctx, "api_key.create", keyId, { metadata: { scopes: scopes.join(" "), tier, expires: expiresAt?.toISOString() ?? "never", networks: allowedCidrs.length } });
      return { key: keyViews.view({ record }, undefined), secret: key };
    },

    async list(ctx: RequestContext, input: OwnerSelection & { status?: ApiKeyStatus; pageSize?: number; pageToken?: string }): Promise<{ keys: ApiKeyView[]; nextPageToken: string }> {
      const scope = keyViews.ownerScope(ctx, input, "listing keys");
      const pageSize = resolvePageSize(input.pageSize);
      const after = decodeKeyPageToken(input.pageToken);
      const states = await store.list({ scope, ...(input.status ? { status: input.status } : {}), now: now(), pageSize: pageSize + 1, ...(after ? { after } : {}) });
      keyViews.auditOthersRead(ctx, scope, "api_key.list");
      const page = states.slice(0, pageSize);
      const last = page.at(-1);
      return {
        keys: await keyViews.views(page),
        nextPageToken: states.length > pageSize && last ? encodeKeyPageToken(last.record.createdAt, last.record._id) : "",
      };
    },

    async get(ctx: RequestContext, keyId: string): Promise<ApiKeyView> {
      const state = await keyViews.visibleKey(ctx, keyId);
      keyViews.auditOthersRead(ctx, { ownerUserId: state.record.ownerUserId }, "api_key.get");
      return (await keyViews.views([state]))[0]!;
    },

    async update(
      ctx: RequestContext,
      keyId: string,
      changes: { name?: string; scopes?: readonly string[]; tier?: RateLimitTier; allowedCidrs?: readonly string[]; metadata?: Record<string, string>; tokenBudget?: TokenBudgetChange },
    ): Promise<ApiKeyView> {
      const state = await keyViews.ownKey(ctx, keyId, "api_key.update", "update");
      const status = statusOf(state, now());
      if (status !== "active") throw new DomainError("failed_precondition", `the key is ${status}`);
      const set: ApiKeySettings = {};
      if (changes.name !== undefined) set.name = checkName(changes.name);
      if (changes.scopes !== undefined) {
        const scopes = checkScopes(changes.scopes, new Set(state.record.scopes), "scopes can only be narrowed: each must be one of the key's current scopes");
        set.scopes = scopes;
      }
      if (changes.tier !== undefined && changes.tier !== state.record.tier) set.tier = checkTier(ctx, changes.tier);
      if (changes.allowedCidrs !== undefined) set.allowedCidrs = normaliseCidrs(changes.allowedCidrs);
      if (changes.metadata !== undefined) set.metadata = checkMetadata(changes.metadata);
      if (changes.tokenBudget && (changes.tokenBudget.perDay !== undefined || changes.tokenBudget.perMonth !== undefined)) {
        set.tokenBudget = checkBudget(state.record.tokenBudget ?? {}, changes.tokenBudget, true);
      }
      if (Object.keys(set).length === 0) return (await keyViews.views([state]))[0]!;
      const at = now();
      if (!(await store.update(keyId, state.record.version, set, at))) {
        throw new DomainError("aborted", "the key was changed concurrently; read it again and retry");
      }
      const record: ApiKeyRecord = { ...state.record, ...set, version: state.record.version + 1, updatedAt: at };
      cache.noteRecord(record);
      await keyViews.recordChange(ctx, "api_key.update", keyId, {
        metadata: {
          fields: Object.keys(set).sort().join(" "),
          ...(set.scopes ? { scopes: set.scopes.join(" ") } : {}),
          ...(set.tokenBudget ? { daily_token_budget: set.tokenBudget.perDay ?? "none", monthly_token_budget: set.tokenBudget.perMonth ?? "none" } : {}),
        },
      });
      return (await keyViews.views([{ ...state, record }]))[0]!;
    },

    async rotate(ctx: RequestContext, keyId: string, graceMs: number): Promise<{ key: ApiKeyView; secret: string; parentKeyId: string; graceExpiresAt: Date }> {
      if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) throw new DomainError("invalid_argument", "grace_period must be from 0 to 24 hours");
      const parent = await keyViews.ownKey(ctx, keyId, "api_key.rotate", "rotate");
      const status = statusOf(parent, now());
      if (status !== "active") throw new DomainError("failed_precondition", `only an active key can be rotated; this one is ${status}`);
      const owner = await deps.userState(parent.record.ownerUserId);
      if (!owner || owner.disabled) throw new DomainError("failed_precondition", "the key's owner is disabled");
      const at = now();
      // The new key keeps the old one's lifetime length (from now), and no scope the owner has lost since.
      const lifetimeMs = parent.record.expiresAt ? Math.min(parent.record.expiresAt.getTime() - parent.record.createdAt.getTime(), policy.maxTtlMs) : undefined;
      const ownerPermissions: ReadonlySet<string> = ROLE_PERMISSIONS[owner.role];
      const scopes = parent.record.scopes.filter((s) => ownerPermissions.has(s));
      if (scopes.length === 0) throw new DomainError("failed_precondition", "the owner no longer holds any of the key's scopes");
      const { key, keyId: childId, secret } = generateApiKey(policy.prefix);
      const child: ApiKeyRecord = {
        ...parent.record,
        _id: childId,
        scopes,
        secretHash: hashSecret(deps.pepper, secret).toString("hex"),
        createdAt: at,
        ...(lifetimeMs !== undefined ? { expiresAt: new Date(at.getTime() + lifetimeMs) } : {}),
        parentKeyId: parent.record._id,
        version: 1,
        updatedAt: at,
      };
      await store.insert(child);
      const graceExpiresAt = new Date(at.getTime() + graceMs);
      const rotation = { _id: parent.record._id, ownerUserId: parent.record.ownerUserId, childKeyId: childId, rotatedAt: at, graceExpiresAt };
      if (!(await store.claimRotation(rotation))) {
        await store.deleteUnclaimed(childId);
        throw new DomainError("failed_precondition", "the key was rotated concurrently");
      }
      cache.noteRecord(child);
      cache.noteRotation(rotation);
      await keyViews.recordChange(ctx, "api_key.rotate", parent.record._id, { metadata: { new_key_id: childId, grace_seconds: Math.round(graceMs / 1000) } });
      return { key: keyViews.view({ record: child }, undefined), secret: key, parentKeyId: parent.record._id, graceExpiresAt };
    },
  };
}
