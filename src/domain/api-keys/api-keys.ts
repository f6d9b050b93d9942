import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { AccessTokenService } from "../tokens/access-tokens.ts";
import type { ApiKeyCache } from "./api-key-cache.ts";
import type { AiUsageReader } from "./api-key-record.ts";
import type { ApiKeyVerifier } from "./api-key-verifier.ts";
import type { ApiKeysStore } from "./api-keys-store.ts";
import { createApiKeyExchange, type ApiKeyExchange } from "./key-exchange.ts";
import { createApiKeyHealth, type ApiKeyHealth } from "./key-health.ts";
import { createApiKeyLifecycle, type ApiKeyLifecycle, type ApiKeyPolicy } from "./key-lifecycle.ts";
import { createApiKeyStats, type ApiKeyStats } from "./key-stats.ts";
import { createKeyViews } from "./key-views.ts";
import type { UsageTracker } from "./usage-tracker.ts";
import type { UserStateReader } from "../revocation/user-state.ts";

export type { TokenBudgetChange } from "./key-input.ts";
export type { ApiKeyPolicy } from "./key-lifecycle.ts";
export type { HealthFinding } from "./key-health.ts";
export type { ApiKeyView, OwnerSelection } from "./key-views.ts";

/**
 * ApiKeyService as the handlers see it: the lifecycle (key-lifecycle.ts), statistics (key-stats.ts),
 * health advice (key-health.ts) and verification and exchange (key-exchange.ts), all seeing keys the
 * same way (key-views.ts).
 */
export interface ApiKeyService extends ApiKeyLifecycle, ApiKeyStats, ApiKeyHealth, ApiKeyExchange {}

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
  userState: UserStateReader;
  /** AI usage per key and user; without it keys show none. */
  aiUsage?: AiUsageReader | undefined;
  now?: () => Date;
}): ApiKeyService {
  const now = deps.now ?? (() => new Date());
  const views = createKeyViews({ store: deps.store, usage: deps.usage, audit: deps.audit, prefix: deps.policy.prefix, aiUsage: deps.aiUsage, now });
  return {
    ...createApiKeyLifecycle({ store: deps.store, cache: deps.cache, views, audit: deps.audit, pepper: deps.pepper, policy: deps.policy, userState: deps.userState, now }),
    ...createApiKeyStats({ views, aiUsage: deps.aiUsage, now }),
    ...createApiKeyHealth({ views, userState: deps.userState, now }),
    ...createApiKeyExchange({ verifier: deps.verifier, views, usage: deps.usage, audit: deps.audit, accessTokens: deps.accessTokens, accessTokenTtlMs: deps.accessTokenTtlMs, now }),
  };
}
