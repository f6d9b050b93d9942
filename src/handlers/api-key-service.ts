import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { ApiKeyFindingKind, type ApiKeyService, ApiKeyStatus, RateLimitTier, type ApiKeySchema } from "../../gen/portcullis/v1/api_key_pb.js";
import type { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Severity } from "../../gen/portcullis/v1/common_pb.js";
import type { RateLimitTier as DomainTier, ApiKeyStatus as DomainStatus } from "../domain/api-keys/api-key-record.ts";
import type { ApiKeyService as ApiKeyLifecycle, ApiKeyView, HealthFinding } from "../domain/api-keys/api-keys.ts";
import { DomainError } from "../domain/errors.ts";
import { callerOf, originOf } from "./caller.ts";
import { principalKey } from "./context-keys.ts";
import { durationMs, timestamp } from "./converters.ts";

const STATUS_TO_PROTO: Readonly<Record<DomainStatus, ApiKeyStatus>> = {
  active: ApiKeyStatus.ACTIVE,
  rotated: ApiKeyStatus.ROTATED,
  revoked: ApiKeyStatus.REVOKED,
  expired: ApiKeyStatus.EXPIRED,
};
const TIER_TO_PROTO: Readonly<Record<DomainTier, RateLimitTier>> = { basic: RateLimitTier.BASIC, standard: RateLimitTier.STANDARD, premium: RateLimitTier.PREMIUM };
const FINDING_TO_PROTO: Readonly<Record<HealthFinding["kind"], ApiKeyFindingKind>> = {
  older_than_90_days: ApiKeyFindingKind.OLDER_THAN_90_DAYS,
  unused_30_days: ApiKeyFindingKind.UNUSED_30_DAYS,
  no_expiry: ApiKeyFindingKind.NO_EXPIRY,
  admin_scopes_long_lived: ApiKeyFindingKind.ADMIN_SCOPES_LONG_LIVED,
  owner_disabled: ApiKeyFindingKind.OWNER_DISABLED,
};
const SEVERITY_TO_PROTO = { low: Severity.LOW, medium: Severity.MEDIUM, high: Severity.HIGH } as const;

function statusFromProto(status: ApiKeyStatus): DomainStatus | undefined {
  switch (status) {
    case ApiKeyStatus.UNSPECIFIED:
      return undefined;
    case ApiKeyStatus.ACTIVE:
      return "active";
    case ApiKeyStatus.ROTATED:
      return "rotated";
    case ApiKeyStatus.REVOKED:
      return "revoked";
    case ApiKeyStatus.EXPIRED:
      return "expired";
    default:
      throw new DomainError("invalid_argument", "status is not a known API key status");
  }
}

/** A tier from a request; UNSPECIFIED means `fallback` (undefined: leave as is). */
function tierFromProto(tier: RateLimitTier, fallback: DomainTier | undefined): DomainTier | undefined {
  switch (tier) {
    case RateLimitTier.UNSPECIFIED:
      return fallback;
    case RateLimitTier.BASIC:
      return "basic";
    case RateLimitTier.STANDARD:
      return "standard";
    case RateLimitTier.PREMIUM:
      return "premium";
    default:
      throw new DomainError("invalid_argument", "rate_limit_tier is not a known tier");
  }
}

function apiKeyMessage(key: ApiKeyView): MessageInitShape<typeof ApiKeySchema> {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    ownerUserId: key.ownerUserId,
    scopes: [...key.scopes],
    status: STATUS_TO_PROTO[key.status],
    rateLimitTier: TIER_TO_PROTO[key.tier],
    allowedCidrs: [...key.allowedCidrs],
    metadata: { ...key.metadata },
    createdAt: timestamp(key.createdAt),
    expiresAt: timestamp(key.expiresAt),
    lastUsedAt: timestamp(key.usage.lastUsedAt),
    lastUsedIp: key.usage.lastUsedIp ?? "",
    usageCount: BigInt(key.usage.count),
    parentKeyId: key.parentKeyId ?? "",
    revokedAt: timestamp(key.revokedAt),
    revokeReason: key.revokeReason ?? "",
    rotatedAt: timestamp(key.rotatedAt),
    graceExpiresAt: timestamp(key.graceExpiresAt),
    ...(key.tokenBudget.perDay !== undefined ? { dailyTokenBudget: BigInt(key.tokenBudget.perDay) } : {}),
    ...(key.tokenBudget.perMonth !== undefined ? { monthlyTokenBudget: BigInt(key.tokenBudget.perMonth) } : {}),
    dailyTokensSpent: BigInt(key.aiUsage.spentToday),
    monthlyTokensSpent: BigInt(key.aiUsage.spentThisMonth),
    aiQueryCount: BigInt(key.aiUsage.queries),
    inputTokens: BigInt(key.aiUsage.inputTokens),
    outputTokens: BigInt(key.aiUsage.outputTokens),
    meanQueryLatencyMs: BigInt(key.aiUsage.queries > 0 ? Math.round(key.aiUsage.latencyMs / key.aiUsage.queries) : 0),
  };
}

/** A budget from a request: int64 → number, refusing what no budget can be (the domain checks the range). */
function budgetFromProto(daily: bigint | undefined, monthly: bigint | undefined): { perDay?: number; perMonth?: number } {
  const convert = (value: bigint | undefined, field: string) => {
    if (value === undefined) return undefined;
    if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new DomainError("invalid_argument", `${field} is out of range`);
    return Number(value);
  };
  const perDay = convert(daily, "daily_token_budget");
  const perMonth = convert(monthly, "monthly_token_budget");
  return { ...(perDay !== undefined ? { perDay } : {}), ...(perMonth !== undefined ? { perMonth } : {}) };
}

/** ApiKeyService: request → domain → response; the domain decides who may do what. */
export function createApiKeyHandlers(keys: ApiKeyLifecycle): Partial<ServiceImpl<typeof ApiKeyService>> {
  return {
    async createApiKey(req, ctx) {
      const expiresInMs = durationMs(req.expiresIn, "expires_in");
      const created = await keys.create(callerOf(ctx), {
        name: req.name,
        scopes: req.scopes,
        ...(expiresInMs !== undefined ? { expiresInMs } : {}),
        noExpiry: req.noExpiry,
        tier: tierFromProto(req.rateLimitTier, "standard")!,
        allowedCidrs: req.allowedCidrs,
        metadata: req.metadata,
        tokenBudget: budgetFromProto(req.dailyTokenBudget, req.monthlyTokenBudget),
      });
      return { apiKey: apiKeyMessage(created.key), secret: created.secret };
    },

    async listApiKeys(req, ctx) {
      const status = statusFromProto(req.status);
      const page = await keys.list(callerOf(ctx), {
        userId: req.userId,
        allUsers: req.allUsers,
        ...(status ? { status } : {}),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { apiKeys: page.keys.map(apiKeyMessage), nextPageToken: page.nextPageToken };
    },

    async getApiKey(req, ctx) {
      return { apiKey: apiKeyMessage(await keys.get(callerOf(ctx), req.keyId)) };
    },

    async updateApiKey(req, ctx) {
      if (req.rateLimitTier === RateLimitTier.UNSPECIFIED) throw new DomainError("invalid_argument", "rate_limit_tier must name a tier when set");
      const tier = req.rateLimitTier === undefined ? undefined : tierFromProto(req.rateLimitTier, undefined);
      const updated = await keys.update(callerOf(ctx), req.keyId, {
        ...(req.name !== undefined ? { name: req.name } : {}),
        ...(req.scopes ? { scopes: req.scopes.values } : {}),
        ...(tier ? { tier } : {}),
        ...(req.allowedCidrs ? { allowedCidrs: req.allowedCidrs.values } : {}),
        ...(req.metadata ? { metadata: req.metadata.entries } : {}),
        tokenBudget: budgetFromProto(req.dailyTokenBudget, req.monthlyTokenBudget),
      });
      return { apiKey: apiKeyMessage(updated) };
    },

    async rotateApiKey(req, ctx) {
      const rotated = await keys.rotate(callerOf(ctx), req.keyId, durationMs(req.gracePeriod, "grace_period") ?? 0);
      return { apiKey: apiKeyMessage(rotated.key), secret: rotated.secret, parentKeyId: rotated.parentKeyId, graceExpiresAt: timestamp(rotated.graceExpiresAt) };
    },

    async revokeApiKey(req, ctx) {
      return { apiKey: apiKeyMessage(await keys.revoke(callerOf(ctx), req.keyId, req.reason)) };
    },

    async revokeAllApiKeys(req, ctx) {
      return { revokedCount: BigInt(await keys.revokeAll(callerOf(ctx), { reason: req.reason, allUsers: req.allUsers })) };
    },

    async getApiKeyStats(req, ctx) {
      const stats = await keys.stats(callerOf(ctx), { userId: req.userId, allUsers: req.allUsers });
      return {
        totalCount: BigInt(stats.total),
        activeCount: BigInt(stats.active),
        rotatedCount: BigInt(stats.rotated),
        revokedCount: BigInt(stats.revoked),
        expiredCount: BigInt(stats.expired),
        totalUsageCount: BigInt(stats.usage),
        usedLast30DaysCount: BigInt(stats.usedRecently),
        expiringWithin7DaysCount: BigInt(stats.expiringSoon),
        lastUsedAt: timestamp(stats.lastUsedAt),
        aiQueryCount: BigInt(stats.ai.queries),
        inputTokens: BigInt(stats.ai.inputTokens),
        outputTokens: BigInt(stats.ai.outputTokens),
        meanQueryLatencyMs: BigInt(stats.ai.queries > 0 ? Math.round(stats.ai.latencyMs / stats.ai.queries) : 0),
      };
    },

    async getApiKeyHealth(req, ctx) {
      const health = await keys.health(callerOf(ctx), { userId: req.userId, allUsers: req.allUsers });
      return {
        findings: health.findings.map((f) => ({
          kind: FINDING_TO_PROTO[f.kind],
          keyId: f.keyId,
          keyName: f.keyName,
          ownerUserId: f.ownerUserId,
          severity: SEVERITY_TO_PROTO[f.severity],
          advice: f.advice,
        })),
        checkedCount: BigInt(health.checked),
      };
    },

    async verifyApiKey(req) {
      const result = await keys.verify(req.apiKey, req.clientIp.trim());
      if (!result.valid) return { valid: false };
      return {
        valid: true,
        keyId: result.key.id,
        ownerUserId: result.key.ownerUserId,
        scopes: [...result.permissions],
        rateLimitTier: TIER_TO_PROTO[result.key.tier],
        expiresAt: timestamp(result.key.expiresAt),
        status: STATUS_TO_PROTO[result.key.status],
      };
    },
  };
}

/** AuthService.ExchangeApiKey, which the API-key layer implements. */
export function createExchangeApiKeyHandler(keys: ApiKeyLifecycle): Pick<ServiceImpl<typeof AuthService>, "exchangeApiKey"> {
  return {
    async exchangeApiKey(req, ctx) {
      const ttlMs = durationMs(req.ttl, "ttl");
      const exchanged = await keys.exchange(
        { ...originOf(ctx), principal: ctx.values.get(principalKey) },
        { apiKey: req.apiKey.trim(), scopes: req.scopes, ...(ttlMs !== undefined ? { ttlMs } : {}) },
      );
      return { accessToken: exchanged.token, expiresAt: timestamp(exchanged.expiresAt), scopes: exchanged.scopes, apiKeyId: exchanged.keyId };
    },
  };
}
