import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";
import type { RequestContext } from "../request-context.ts";
import {
  combineUsage,
  statusOf,
  type AiUsageReader,
  type ApiKeyAiUsage,
  type ApiKeyState,
  type ApiKeyStatus,
  type ApiKeyUsage,
  type RateLimitTier,
  type TokenBudgetSettings,
} from "./api-key-record.ts";
import type { ApiKeysStore, KeyOwnerScope } from "./api-keys-store.ts";
import { displayPrefix } from "./key-format.ts";
import type { UsageTracker } from "./usage-tracker.ts";

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

const NO_AI_USAGE: ApiKeyAiUsage = { queries: 0, inputTokens: 0, outputTokens: 0, latencyMs: 0, spentToday: 0, spentThisMonth: 0 };

/** Whose keys a list, stats or health call is about, as the request names it. */
export interface OwnerSelection {
  readonly userId?: string;
  readonly allUsers?: boolean;
}

/**
 * How keys are seen: which keys a caller may see (their own; everyone's with `users.manage`; a key they
 * may not see answers NOT_FOUND, exactly like one that does not exist), and what a key looks like to
 * them (settings, derived status and usage merged over every instance). Reads of other users' keys are
 * audited. Shared by the lifecycle, the statistics and the health check.
 */
export interface KeyViews {
  /** One key as callers see it, with the usage given (none: zero). */
  view(state: ApiKeyState, usage: ApiKeyUsage | undefined, aiUsage?: ApiKeyAiUsage): ApiKeyView;
  /** Keys as callers see them, with usage from every instance (this one's from memory: no write on a read). */
  views(states: ApiKeyState[]): Promise<ApiKeyView[]>;
  /** The key, if the caller may see it; NOT_FOUND otherwise. */
  visibleKey(ctx: RequestContext, keyId: string): Promise<ApiKeyState>;
  /**
   * The caller's own key, for the operations that shape a credential (rotate, update): NOT_FOUND when
   * they may not even see it, PERMISSION_DENIED (audited as `type`) when they see it through `users.manage`.
   */
  ownKey(ctx: RequestContext, keyId: string, type: string, verb: string): Promise<ApiKeyState>;
  /** Records a change the caller made (to a key, or to several: no `keyId`), before it is reported. */
  recordChange(ctx: RequestContext, type: string, keyId: string | undefined, extra?: { reason?: string; metadata?: Record<string, string | number | boolean> }): Promise<string>;
  /** Refuses with PERMISSION_DENIED, recording the refusal (who, which key, why) as `type` first. */
  refuse(ctx: RequestContext, type: string, keyId: string, message: string): never;
  /** Whose keys a selection means, if the caller may see them; PERMISSION_DENIED otherwise. */
  ownerScope(ctx: RequestContext, selection: OwnerSelection, what: string): KeyOwnerScope;
  /** Audits a read of keys that are not the caller's own. */
  auditOthersRead(ctx: RequestContext, scope: KeyOwnerScope, type: string): void;
  /**
   * Every key a selection means, as seen, for statistics and health: refused unless the caller may see
   * them (`what` names the read in the refusal), and audited as `auditType` when they are not the caller's.
   */
  selected(ctx: RequestContext, selection: OwnerSelection, what: string, auditType: string): Promise<{ scope: KeyOwnerScope; keys: ApiKeyView[] }>;
}

export function createKeyViews(deps: {
  store: ApiKeysStore;
  usage: UsageTracker;
  audit: AuditRecorder;
  prefix: string;
  /** AI usage per key and user; without it keys show none. */
  aiUsage?: AiUsageReader | undefined;
  now: () => Date;
}): KeyViews {
  const { store, now } = deps;
  const policy = { prefix: deps.prefix };
  const mayManageOthers = (principal: Principal) => principal.permissions.has("users.manage");

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
  const visibleKey = async (ctx: RequestContext, keyId: string): Promise<ApiKeyState> => {
    if (!/^[0-9A-Za-z]{16}$/.test(keyId)) throw new DomainError("not_found", "API key not found");
    const state = await store.findState(keyId);
    if (!state || (state.record.ownerUserId !== ctx.principal.userId && !mayManageOthers(ctx.principal))) {
      throw new DomainError("not_found", "API key not found");
    }
    return state;
  };
  const ownerScope = (ctx: RequestContext, selection: OwnerSelection, what: string): KeyOwnerScope => {
    if (selection.allUsers || (selection.userId && selection.userId !== ctx.principal.userId)) {
      if (!mayManageOthers(ctx.principal)) throw new DomainError("permission_denied", `${what} of other users needs users.manage`);
      if (selection.allUsers) return { all: true };
      if (!/^[0-9a-f-]{36}$/.test(selection.userId!)) throw new DomainError("invalid_argument", "user_id is malformed");
      return { ownerUserId: selection.userId! };
    }
    return { ownerUserId: ctx.principal.userId };
  };
  const auditOthersRead = (ctx: RequestContext, scope: KeyOwnerScope, type: string) => {
    if (!("all" in scope) && scope.ownerUserId === ctx.principal.userId) return;
    deps.audit.record({
      type,
      outcome: "success",
      ...auditedCaller(ctx),
      target: "all" in scope ? { kind: "user", id: "*" } : { kind: "user", id: scope.ownerUserId },
    });
  };

  const selected = async (ctx: RequestContext, selection: OwnerSelection, what: string, auditType: string) => {
    const scope = ownerScope(ctx, selection, what);
    auditOthersRead(ctx, scope, auditType);
    return { scope, keys: await views(await store.all(scope)) };
  };

  const refuse = (ctx: RequestContext, type: string, keyId: string, message: string): never => {
    deps.audit.record({ type, outcome: "denied", ...auditedCaller(ctx), target: { kind: "api_key", id: keyId }, reason: message });
    throw new DomainError("permission_denied", message);
  };

  const ownKey = async (ctx: RequestContext, keyId: string, type: string, verb: string): Promise<ApiKeyState> => {
    const state = await visibleKey(ctx, keyId);
    if (state.record.ownerUserId !== ctx.principal.userId) refuse(ctx, type, keyId, `only a key's owner may ${verb} it`);
    return state;
  };

  const recordChange: KeyViews["recordChange"] = (ctx, type, keyId, extra = {}) =>
    deps.audit.recordNow({ type, outcome: "success", ...auditedCaller(ctx), ...(keyId ? { target: { kind: "api_key", id: keyId } } : {}), ...extra });

  return { view, views, visibleKey, ownKey, refuse, recordChange, ownerScope, auditOthersRead, selected };
}
