import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import { ALL_PERMISSIONS, ROLE_PERMISSIONS } from "../../access/permissions.ts";
import type { ApiKeysStore, KeyOwnerScope } from "../../store/api-keys-store.ts";
import { apiKeyAuditActor, auditActorOf } from "../audit/audit-actor.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { ActionContext } from "../auth/session-actions.ts";
import { keyRejectionError } from "../auth/api-key-authenticator.ts";
import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";
import type { UserState } from "../revocation/revocation-cache.ts";
import type { AccessTokenService } from "../tokens/access-tokens.ts";
import { mayActOnUser } from "../users/role-hierarchy.ts";
import { resolvePageSize } from "../users/user-paging.ts";
import type { ApiKeyCache } from "./api-key-cache.ts";
import { combineUsage, statusOf, TIER_RATE_SCALE, type AiUsageReader, type ApiKeyAiUsage, type ApiKeyRecord, type ApiKeySettings, type ApiKeyState, type ApiKeyStatus, type ApiKeyUsage, type RateLimitTier, type TokenBudgetSettings } from "./api-key-record.ts";
import type { ApiKeyVerifier } from "./api-key-verifier.ts";
import { normaliseCidrs } from "./client-networks.ts";
import { displayPrefix, generateApiKey, hashSecret } from "./key-format.ts";
import type { UsageTracker } from "./usage-tracker.ts";

export interface ApiKeyPolicy {
  readonly prefix: string;
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
  readonly allowNoExpiry: boolean;
  readonly maxPerUser: number;
  /** The highest tier a caller without `users.manage` may give their own keys (a larger budget is a privilege). */
  readonly selfServiceTier: RateLimitTier;
}

/** A key as callers see it: settings, derived status and usage — never the secret or its hash. */
export interface ApiKeyView {
  readonly id: string;
  readonly prefix: string;
  readonly name: string;
  readonly ownerUserId: string;
  readonly scopes: readonly string[];
  readonly status: ApiKeyStatus;
  readonly tier: RateLimitTier;
  readonly allowedCidrs: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly expiresAt?: Date | undefined;
  readonly parentKeyId?: string | undefined;
  readonly usage: ApiKeyUsage;
  readonly revokedAt?: Date | undefined;
  readonly revokeReason?: string | undefined;
  readonly rotatedAt?: Date | undefined;
  readonly graceExpiresAt?: Date | undefined;
  readonly tokenBudget: TokenBudgetSettings;
  readonly aiUsage: ApiKeyAiUsage;
}

/** A budget change: a positive number sets it, 0 removes it, undefined leaves it. */
export interface TokenBudgetChange {
  readonly perDay?: number | undefined;
  readonly perMonth?: number | undefined;
}

const NO_AI_USAGE: ApiKeyAiUsage = { queries: 0, inputTokens: 0, outputTokens: 0, latencyMs: 0, spentToday: 0, spentThisMonth: 0 };
// Budgets above this are no budget at all; the bound keeps them exact as JavaScript numbers.
const MAX_TOKEN_BUDGET = 1e15;

export interface HealthFinding {
  readonly kind: "older_than_90_days" | "unused_30_days" | "no_expiry" | "admin_scopes_long_lived" | "owner_disabled";
  readonly keyId: string;
  readonly keyName: string;
  readonly ownerUserId: string;
  readonly severity: "low" | "medium" | "high";
  readonly advice: string;
}

/** Whose keys a list, stats or health call is about, as the request names it. */
export interface OwnerSelection {
  readonly userId?: string;
  readonly allUsers?: boolean;
}

const DAY_MS = 86_400_000;
const MAX_GRACE_MS = DAY_MS;
const MAX_NAME_LENGTH = 100;
const MAX_REASON_LENGTH = 500;
const MAX_METADATA_ENTRIES = 32;
// Metadata keys become field names of the stored key document, where MongoDB reads "." as a path
// separator and a leading "$" as an operator: neither is in the alphabet, so such a key is refused up
// front (INVALID_ARGUMENT) instead of failing in the database (INTERNAL).
const METADATA_KEY = /^[A-Za-z0-9_:/-]{1,64}$/;
// Permissions a plain user does not have: a key carrying one is an administrative credential.
const ADMIN_ONLY = new Set([...ROLE_PERMISSIONS.owner].filter((p) => !ROLE_PERMISSIONS.user.has(p)));
const SEVERITY_ORDER = { high: 0, medium: 1, low: 2 } as const;

/**
 * The API-key lifecycle. A user acts on their own keys; `users.manage` extends reads (audited) and
 * revocation to other users' keys, revocation only as far as the role hierarchy allows
 * (`mayActOnUser`: an admin revokes plain users' keys, never an owner's or another admin's). Nobody ever
 * receives or shapes a credential that acts as another user: a key is created for its caller only, and
 * rotated, updated or exchanged (while signed in) by its owner only. A key the caller may not see
 * answers NOT_FOUND, exactly like a key that does not exist; one they may see but not touch answers
 * PERMISSION_DENIED, audited. Every change is audited before it is reported, and applied to this
 * instance's key cache at once (other instances see it within a poll interval).
 */
export function createApiKeyService(deps: {
  store: ApiKeysStore;
  cache: ApiKeyCache;
  verifier: ApiKeyVerifier;
  usage: UsageTracker;
  audit: AuditRecorder;
  accessTokens: AccessTokenService;
  /** The longest an exchanged token may live: the access-token TTL. */
  accessTokenTtlMs: number;
  /** The HMAC key of stored secrets. */
  pepper: Buffer;
  policy: ApiKeyPolicy;
  /** The current state of a user (role, disabled), for health findings and rotation. */
  userState: (userId: string) => Promise<UserState | undefined>;
  /** AI usage per key and user; without it keys show none. */
  aiUsage?: AiUsageReader;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  const { policy, store, cache } = deps;
  const mayManageOthers = (principal: Principal) => principal.permissions.has("users.manage");

  const auditNow = (ctx: ActionContext, type: string, keyId: string | undefined, extra: { reason?: string; metadata?: Record<string, string | number | boolean> } = {}) =>
    deps.audit.recordNow({
      type,
      outcome: "success",
      actor: auditActorOf(ctx.principal),
      ...(keyId ? { target: { kind: "api_key", id: keyId } } : {}),
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent,
      requestId: ctx.requestId,
      ...extra,
    });

  const view = (state: ApiKeyState, usage: ApiKeyUsage | undefined, aiUsage?: ApiKeyAiUsage): ApiKeyView => {
    const { record, revocation, rotation } = state;
    return {
      id: record._id,
      prefix: displayPrefix(policy.prefix, record._id),
      name: record.name,
      ownerUserId: record.ownerUserId,
      scopes: record.scopes,
      status: statusOf(state, now()),
      tier: record.tier,
      allowedCidrs: record.allowedCidrs,
      metadata: record.metadata,
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      parentKeyId: record.parentKeyId,
      usage: usage ?? { count: 0 },
      revokedAt: revocation?.revokedAt,
      revokeReason: revocation?.reason,
      rotatedAt: rotation?.rotatedAt,
      graceExpiresAt: rotation?.graceExpiresAt,
      tokenBudget: record.tokenBudget ?? {},
      aiUsage: aiUsage ?? NO_AI_USAGE,
    };
  };

  const views = async (states: ApiKeyState[]): Promise<ApiKeyView[]> => {
    // Other instances' counts as last written, this instance's from memory: no write on a read.
    const ids = states.map((s) => s.record._id);
    const [usage, ai] = await Promise.all([store.usageOf(ids, { exceptInstance: deps.usage.instanceId }), deps.aiUsage?.keyUsage(ids, now())]);
    return states.map((s) => {
      const mine = deps.usage.current(s.record._id);
      const theirs = usage.get(s.record._id);
      return view(s, mine ? combineUsage(theirs, mine) : theirs, ai?.get(s.record._id));
    });
  };

  /** The key, if the caller may see it; NOT_FOUND otherwise (existence does not leak). */
  const visibleKey = async (ctx: ActionContext, keyId: string): Promise<ApiKeyState> => {
    if (!/^[0-9A-Za-z]{16}$/.test(keyId)) throw new DomainError("not_found", "API key not found");
    const state = await store.findState(keyId);
    if (!state || (state.record.ownerUserId !== ctx.principal.userId && !mayManageOthers(ctx.principal))) {
      throw new DomainError("not_found", "API key not found");
    }
    return state;
  };

  /** Refuses with PERMISSION_DENIED, recording the refusal (who, which key, why) first. */
  const refuse = (ctx: ActionContext, type: string, keyId: string, message: string): never => {
    deps.audit.record({
      type,
      outcome: "denied",
      actor: auditActorOf(ctx.principal),
      target: { kind: "api_key", id: keyId },
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent,
      requestId: ctx.requestId,
      reason: message,
    });
    throw new DomainError("permission_denied", message);
  };

  /**
   * The caller's own key, for the operations that shape a credential (rotate, update): NOT_FOUND when
   * they may not even see it, PERMISSION_DENIED (audited) when they see it through `users.manage`.
   */
  const ownKey = async (ctx: ActionContext, keyId: string, type: string, verb: string): Promise<ApiKeyState> => {
    const state = await visibleKey(ctx, keyId);
    if (state.record.ownerUserId !== ctx.principal.userId) refuse(ctx, type, keyId, `only a key's owner may ${verb} it`);
    return state;
  };

  /** A tier the caller may assign: up to the self-service tier, anything with `users.manage`. */
  const checkTier = (ctx: ActionContext, tier: RateLimitTier): RateLimitTier => {
    if (TIER_RATE_SCALE[tier] > TIER_RATE_SCALE[policy.selfServiceTier] && !mayManageOthers(ctx.principal)) {
      throw new DomainError("permission_denied", `the ${tier} rate-limit tier needs users.manage`);
    }
    return tier;
  };

  const ownerScope = (ctx: ActionContext, selection: OwnerSelection, what: string): KeyOwnerScope => {
    if (selection.allUsers || (selection.userId && selection.userId !== ctx.principal.userId)) {
      if (!mayManageOthers(ctx.principal)) throw new DomainError("permission_denied", `${what} of other users needs users.manage`);
      if (selection.allUsers) return { all: true };
      if (!/^[0-9a-f-]{36}$/.test(selection.userId!)) throw new DomainError("invalid_argument", "user_id is malformed");
      return { ownerUserId: selection.userId! };
    }
    return { ownerUserId: ctx.principal.userId };
  };

  const auditOthersRead = (ctx: ActionContext, scope: KeyOwnerScope, type: string) => {
    if (!("all" in scope) && scope.ownerUserId === ctx.principal.userId) return;
    deps.audit.record({
      type,
      outcome: "success",
      actor: auditActorOf(ctx.principal),
      target: "all" in scope ? { kind: "user", id: "*" } : { kind: "user", id: scope.ownerUserId },
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent,
      requestId: ctx.requestId,
    });
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

  const revokeStates = async (ctx: ActionContext, targets: Array<{ keyId: string; ownerUserId: string }>, reason: string) => {
    const at = now();
    const revokedBy = ctx.principal.userId;
    const count = await store.revoke(targets, { reason, revokedBy, at });
    for (const t of targets) cache.noteRevocation({ _id: t.keyId, ownerUserId: t.ownerUserId, revokedAt: at, reason, revokedBy });
    return count;
  };

  return {
    async create(
      ctx: ActionContext,
      input: { name: string; scopes: readonly string[]; expiresInMs?: number; noExpiry: boolean; tier?: RateLimitTier; allowedCidrs: readonly string[]; metadata: Record<string, string>; tokenBudget?: TokenBudgetChange },
    ): Promise<{ key: ApiKeyView; secret: string }> {
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
      await auditNow(ctx, "api_key.create", keyId, { metadata: { scopes: scopes.join(" "), tier, expires: expiresAt?.toISOString() ?? "never", networks: allowedCidrs.length } });
      return { key: view({ record }, undefined), secret: key };
    },

    async list(ctx: ActionContext, input: OwnerSelection & { status?: ApiKeyStatus; pageSize?: number; pageToken?: string }): Promise<{ keys: ApiKeyView[]; nextPageToken: string }> {
      const scope = ownerScope(ctx, input, "listing keys");
      const pageSize = resolvePageSize(input.pageSize);
      const after = decodeKeyPageToken(input.pageToken);
      const states = await store.list({ scope, ...(input.status ? { status: input.status } : {}), now: now(), pageSize: pageSize + 1, ...(after ? { after } : {}) });
      auditOthersRead(ctx, scope, "api_key.list");
      const page = states.slice(0, pageSize);
      const last = page.at(-1);
      return {
        keys: await views(page),
        nextPageToken: states.length > pageSize && last ? encodeKeyPageToken(last.record.createdAt, last.record._id) : "",
      };
    },

    async get(ctx: ActionContext, keyId: string): Promise<ApiKeyView> {
      const state = await visibleKey(ctx, keyId);
      auditOthersRead(ctx, { ownerUserId: state.record.ownerUserId }, "api_key.get");
      return (await views([state]))[0]!;
    },

    async update(
      ctx: ActionContext,
      keyId: string,
      changes: { name?: string; scopes?: readonly string[]; tier?: RateLimitTier; allowedCidrs?: readonly string[]; metadata?: Record<string, string>; tokenBudget?: TokenBudgetChange },
    ): Promise<ApiKeyView> {
      const state = await ownKey(ctx, keyId, "api_key.update", "update");
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
      if (Object.keys(set).length === 0) return (await views([state]))[0]!;
      const at = now();
      if (!(await store.update(keyId, state.record.version, set, at))) {
        throw new DomainError("aborted", "the key was changed concurrently; read it again and retry");
      }
      const record: ApiKeyRecord = { ...state.record, ...set, version: state.record.version + 1, updatedAt: at };
      cache.noteRecord(record);
      await auditNow(ctx, "api_key.update", keyId, {
        metadata: {
          fields: Object.keys(set).sort().join(" "),
          ...(set.scopes ? { scopes: set.scopes.join(" ") } : {}),
          ...(set.tokenBudget ? { daily_token_budget: set.tokenBudget.perDay ?? "none", monthly_token_budget: set.tokenBudget.perMonth ?? "none" } : {}),
        },
      });
      return (await views([{ ...state, record }]))[0]!;
    },

    async rotate(ctx: ActionContext, keyId: string, graceMs: number): Promise<{ key: ApiKeyView; secret: string; parentKeyId: string; graceExpiresAt: Date }> {
      if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) throw new DomainError("invalid_argument", "grace_period must be from 0 to 24 hours");
      const parent = await ownKey(ctx, keyId, "api_key.rotate", "rotate");
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
      await auditNow(ctx, "api_key.rotate", parent.record._id, { metadata: { new_key_id: childId, grace_seconds: Math.round(graceMs / 1000) } });
      return { key: view({ record: child }, undefined), secret: key, parentKeyId: parent.record._id, graceExpiresAt };
    },

    async revoke(ctx: ActionContext, keyId: string, reasonRaw: string): Promise<ApiKeyView> {
      const reason = checkReason(reasonRaw);
      const state = await visibleKey(ctx, keyId);
      const ownerUserId = state.record.ownerUserId;
      if (ownerUserId !== ctx.principal.userId && !mayActOnUser(ctx.principal, { userId: ownerUserId, role: (await deps.userState(ownerUserId))?.role })) {
        refuse(ctx, "api_key.revoke", keyId, "your role may not revoke this user's keys");
      }
      if (state.revocation) return (await views([state]))[0]!;
      await revokeStates(ctx, [{ keyId, ownerUserId: state.record.ownerUserId }], reason);
      await auditNow(ctx, "api_key.revoke", keyId, { reason });
      const after = await store.findState(keyId);
      return (await views([after ?? state]))[0]!;
    },

    /**
     * The audit service's automatic response: revokes a key without a caller (the response audits
     * itself, naming the finding). False when the key is unknown or was revoked already.
     */
    async revokeForResponse(keyId: string, reason: string): Promise<boolean> {
      if (!/^[0-9A-Za-z]{16}$/.test(keyId)) return false;
      const state = await store.findState(keyId);
      if (!state || state.revocation) return false;
      const at = now();
      const revocation = { _id: keyId, ownerUserId: state.record.ownerUserId, revokedAt: at, reason, revokedBy: "system" };
      const count = await store.revoke([{ keyId, ownerUserId: state.record.ownerUserId }], { reason, revokedBy: "system", at });
      cache.noteRevocation(revocation);
      return count === 1;
    },

    async revokeAll(ctx: ActionContext, input: { reason: string; allUsers: boolean }): Promise<number> {
      const reason = checkReason(input.reason);
      if (input.allUsers && ctx.principal.role !== "owner") throw new DomainError("permission_denied", "only an owner may revoke every user's keys");
      const scope: KeyOwnerScope = input.allUsers ? { all: true } : { ownerUserId: ctx.principal.userId };
      const count = await revokeStates(ctx, await store.unrevoked(scope), reason);
      await auditNow(ctx, "api_key.revoke_all", undefined, { reason, metadata: { revoked: count, all_users: input.allUsers } });
      return count;
    },

    async stats(ctx: ActionContext, selection: OwnerSelection) {
      const scope = ownerScope(ctx, selection, "key statistics");
      auditOthersRead(ctx, scope, "api_key.stats");
      const keyViews = await views(await store.all(scope));
      const at = now().getTime();
      const counts = { active: 0, rotated: 0, revoked: 0, expired: 0 };
      let usage = 0;
      let usedRecently = 0;
      let expiringSoon = 0;
      let lastUsedAt: Date | undefined;
      for (const key of keyViews) {
        counts[key.status]++;
        usage += key.usage.count;
        if (key.usage.lastUsedAt && (!lastUsedAt || key.usage.lastUsedAt > lastUsedAt)) lastUsedAt = key.usage.lastUsedAt;
        if (key.status !== "active") continue;
        if (key.usage.lastUsedAt && at - key.usage.lastUsedAt.getTime() <= 30 * DAY_MS) usedRecently++;
        if (key.expiresAt && key.expiresAt.getTime() - at <= 7 * DAY_MS) expiringSoon++;
      }
      const ai = (await deps.aiUsage?.userUsage(scope)) ?? { queries: 0, inputTokens: 0, outputTokens: 0, latencyMs: 0 };
      return { total: keyViews.length, ...counts, usage, usedRecently, expiringSoon, lastUsedAt, ai };
    },

    async health(ctx: ActionContext, selection: OwnerSelection): Promise<{ findings: HealthFinding[]; checked: number }> {
      const scope = ownerScope(ctx, selection, "key health");
      auditOthersRead(ctx, scope, "api_key.health");
      const at = now().getTime();
      // Keys that still work (active, or rotated within grace) are the ones worth advice.
      const live = (await views(await store.all(scope))).filter((k) => k.status === "active" || (k.status === "rotated" && (k.graceExpiresAt?.getTime() ?? 0) > at));
      const findings: HealthFinding[] = [];
      const ownerStates = new Map<string, UserState | undefined>();
      for (const key of live) {
        const base = { keyId: key.id, keyName: key.name, ownerUserId: key.ownerUserId };
        if (!ownerStates.has(key.ownerUserId)) ownerStates.set(key.ownerUserId, await deps.userState(key.ownerUserId));
        const owner = ownerStates.get(key.ownerUserId);
        if (!owner || owner.disabled) findings.push({ ...base, kind: "owner_disabled", severity: "high", advice: "The key's owner is disabled, so the key no longer works: revoke it." });
        const lifetimeMs = key.expiresAt ? key.expiresAt.getTime() - key.createdAt.getTime() : Infinity;
        if (key.scopes.some((s) => ADMIN_ONLY.has(s as never)) && lifetimeMs > 30 * DAY_MS) {
          findings.push({ ...base, kind: "admin_scopes_long_lived", severity: "high", advice: "The key carries administrative scopes for more than 30 days: narrow its scopes or rotate it to a shorter-lived key." });
        }
        if (!key.expiresAt) findings.push({ ...base, kind: "no_expiry", severity: "medium", advice: "The key never expires: replace it with a key that does." });
        if (at - key.createdAt.getTime() > 90 * DAY_MS) findings.push({ ...base, kind: "older_than_90_days", severity: "medium", advice: "The key is older than 90 days: rotate it." });
        const lastActivity = key.usage.lastUsedAt?.getTime() ?? key.createdAt.getTime();
        if (at - lastActivity > 30 * DAY_MS) {
          findings.push({ ...base, kind: "unused_30_days", severity: "low", advice: "The key has not been used for 30 days: revoke it if nothing needs it." });
        }
      }
      findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.keyId.localeCompare(b.keyId));
      return { findings, checked: live.length };
    },

    /** For services that accept our keys: never an error for a bad key, and not counted as use. */
    async verify(value: string, clientIp: string): Promise<{ valid: false } | { valid: true; key: ApiKeyView; permissions: readonly string[] }> {
      if (value.length === 0) throw new DomainError("invalid_argument", "api_key is required");
      if (clientIp !== "" && isIP(clientIp) === 0) throw new DomainError("invalid_argument", "client_ip is not an IP address");
      if (value.length > 1024) return { valid: false };
      const verdict = await deps.verifier.verify(value, clientIp === "" ? undefined : clientIp);
      if (!verdict.ok) return { valid: false };
      return { valid: true, key: view(verdict.key.state, undefined), permissions: [...verdict.key.permissions].sort() };
    },

    /**
     * ExchangeApiKey: a valid key for a short-lived access token carrying (some of) its scopes. The caller
     * is usually anonymous; one who is signed in (`client.principal`) may exchange only their own keys,
     * so that no signed-in caller is handed a token acting as somebody else.
     */
    async exchange(
      client: ActionContext["client"] & { requestId: string; principal?: Principal | undefined },
      input: { apiKey: string; scopes: readonly string[]; ttlMs?: number },
    ): Promise<{ token: string; expiresAt: Date; scopes: string[]; keyId: string }> {
      if (input.apiKey.length === 0) throw new DomainError("invalid_argument", "api_key is required");
      if (input.ttlMs !== undefined && (!Number.isFinite(input.ttlMs) || input.ttlMs <= 0)) throw new DomainError("invalid_argument", "ttl must be positive");
      const verdict = input.apiKey.length > 1024 ? ({ ok: false, rejection: "malformed" } as const) : await deps.verifier.verify(input.apiKey, client.ip);
      if (!verdict.ok) {
        if (verdict.keyId) {
          deps.audit.record({ type: "api_key.exchange", outcome: "denied", actor: { kind: "anonymous" }, target: { kind: "api_key", id: verdict.keyId }, ip: client.ip, userAgent: client.userAgent, requestId: client.requestId, reason: verdict.rejection });
        }
        // The contract: a disabled owner or a foreign network is a refusal of a known key, not an unknown one.
        if (verdict.rejection === "owner_disabled") throw new DomainError("permission_denied", "the key's owner is disabled");
        throw keyRejectionError(verdict.rejection);
      }
      const { state, permissions, ownerRole } = verdict.key;
      if (client.principal && client.principal.userId !== state.record.ownerUserId) {
        refuse({ principal: client.principal, client, requestId: client.requestId }, "api_key.exchange", state.record._id, "a signed-in caller may exchange only their own keys");
      }
      const requested = input.scopes.length > 0 ? [...new Set(input.scopes)] : [...permissions];
      const outside = requested.filter((s) => !permissions.has(s));
      if (outside.length > 0) throw new DomainError("permission_denied", "a requested scope is not granted by this key");
      // The token lives no longer than asked, than the key, or than an access token.
      const atMs = now().getTime();
      let ttlMs = input.ttlMs ?? Number.POSITIVE_INFINITY;
      if (state.record.expiresAt) ttlMs = Math.min(ttlMs, state.record.expiresAt.getTime() - atMs);
      if (state.rotation) ttlMs = Math.min(ttlMs, state.rotation.graceExpiresAt.getTime() - atMs);
      const issued = await deps.accessTokens.issue({
        userId: state.record.ownerUserId,
        sessionId: randomUUID(),
        role: ownerRole,
        permissions: requested.sort(),
        amr: "api_key",
        keyId: state.record._id,
        ...(Number.isFinite(ttlMs) ? { ttlMs: Math.max(1_000, Math.min(ttlMs, deps.accessTokenTtlMs)) } : {}),
      });
      deps.usage.noteUse(state.record._id, client.ip);
      deps.audit.record({
        type: "api_key.exchange",
        outcome: "success",
        actor: apiKeyAuditActor({ id: state.record._id, name: state.record.name, ownerUserId: state.record.ownerUserId }),
        target: { kind: "user", id: state.record.ownerUserId },
        ip: client.ip,
        userAgent: client.userAgent,
        requestId: client.requestId,
        metadata: { scopes: requested.join(" "), expires: issued.expiresAt.toISOString() },
      });
      return { token: issued.token, expiresAt: issued.expiresAt, scopes: requested, keyId: state.record._id };
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;

function checkName(raw: string): string {
  const name = raw.normalize("NFC").trim();
  if (name.length === 0 || [...name].length > MAX_NAME_LENGTH) throw new DomainError("invalid_argument", `name must be 1 to ${MAX_NAME_LENGTH} characters`);
  if (/\p{Cc}|\p{Cf}/u.test(name)) throw new DomainError("invalid_argument", "name must not contain control characters");
  return name;
}

/** Applies a budget change: positive sets, 0 removes (only when updating), anything else is INVALID_ARGUMENT. */
function checkBudget(current: TokenBudgetSettings, change: TokenBudgetChange, updating: boolean): TokenBudgetSettings {
  const next: { perDay?: number; perMonth?: number } = { ...current };
  for (const [field, label] of [["perDay", "daily_token_budget"], ["perMonth", "monthly_token_budget"]] as const) {
    const value = change[field];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0 || (value === 0 && !updating) || value > MAX_TOKEN_BUDGET) {
      throw new DomainError("invalid_argument", `${label} must be a positive whole number${updating ? " (0 removes it)" : ""}`);
    }
    if (value === 0) delete next[field];
    else next[field] = value;
  }
  return next;
}

function checkReason(raw: string): string {
  const reason = raw.trim();
  if (reason.length === 0) throw new DomainError("invalid_argument", "reason is required");
  if (reason.length > MAX_REASON_LENGTH) throw new DomainError("invalid_argument", `reason must be at most ${MAX_REASON_LENGTH} characters`);
  if (/\p{Cc}/u.test(reason)) throw new DomainError("invalid_argument", "reason must not contain control characters");
  return reason;
}

/** Scopes must be known permissions (INVALID_ARGUMENT) and within `allowed` (PERMISSION_DENIED). */
function checkScopes(raw: readonly string[], allowed: ReadonlySet<string>, deniedMessage = "a key's scopes must be among your own permissions"): string[] {
  const scopes = [...new Set(raw.map((s) => s.trim()))];
  if (scopes.length === 0) throw new DomainError("invalid_argument", "at least one scope is required");
  const unknown = scopes.find((s) => !ALL_PERMISSIONS.has(s));
  if (unknown !== undefined) throw new DomainError("invalid_argument", `unknown scope ${JSON.stringify(unknown.slice(0, 64))}`);
  if (scopes.some((s) => !allowed.has(s))) throw new DomainError("permission_denied", deniedMessage);
  return scopes.sort();
}

function checkMetadata(raw: Record<string, string>): Record<string, string> {
  const entries = Object.entries(raw);
  if (entries.length > MAX_METADATA_ENTRIES) throw new DomainError("invalid_argument", `at most ${MAX_METADATA_ENTRIES} metadata entries`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    // Keys become document field names: no "." or "$" (see METADATA_KEY), no prototype tricks.
    if (!METADATA_KEY.test(key) || key === "__proto__") throw new DomainError("invalid_argument", `metadata key ${JSON.stringify(key.slice(0, 64))} is not 1 to 64 of A-Z a-z 0-9 _ : / - (no "." or "$")`);
    if (value.length > 256 || /\p{Cc}/u.test(value)) throw new DomainError("invalid_argument", "metadata values are at most 256 characters without control characters");
    out[key] = value;
  }
  return out;
}

function encodeKeyPageToken(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.getTime()}.${id}`, "utf8").toString("base64url");
}

function decodeKeyPageToken(token: string | undefined): { createdAt: Date; id: string } | undefined {
  if (token === undefined || token === "") return undefined;
  const text = /^[A-Za-z0-9_-]{1,64}$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  const match = /^(\d{1,15})\.([0-9A-Za-z]{16})$/.exec(text);
  if (!match) throw new DomainError("invalid_argument", "page token is malformed");
  return { createdAt: new Date(Number(match[1])), id: match[2]! };
}
