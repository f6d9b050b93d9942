import type { Config } from "../config/config.ts";
import { createApiKeyCache, type ApiKeyCache } from "../domain/api-keys/api-key-cache.ts";
import type { AiUsageReader } from "../domain/api-keys/api-key-record.ts";
import { createApiKeyVerifier } from "../domain/api-keys/api-key-verifier.ts";
import { createApiKeyService, type ApiKeyService } from "../domain/api-keys/api-keys.ts";
import type { ApiKeysStore } from "../domain/api-keys/api-keys-store.ts";
import { createUsageTracker, type UsageTracker } from "../domain/api-keys/usage-tracker.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createApiKeyAuthenticator, type ApiKeyAuthenticator } from "../domain/auth/api-key-authenticator.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import { createApiKeysStore } from "../store/api-keys-store.ts";
import type { Store } from "../store/mongo-store.ts";
import type { Poller } from "./background.ts";
import type { Identity } from "./identity.ts";

/** The API-key services of one gateway. */
export interface ApiKeys {
  readonly store: ApiKeysStore;
  readonly cache: ApiKeyCache;
  readonly usage: UsageTracker;
  readonly service: ApiKeyService;
  readonly authenticator: ApiKeyAuthenticator;
  /** The key cache's poller and the usage tracker's writer (which writes what is left when stopped). */
  readonly pollers: readonly Poller[];
}

// Every instance reads key changes this often: well inside the one-second promise.
const KEY_POLL_MS = 250;
const USAGE_FLUSH_MS = 5_000;

/** Wires key storage, the key cache, usage counting, verification and the lifecycle on the identity services (and the AI usage the keys show). */
export function createApiKeys(deps: { store: Store; identity: Identity; keyring: Keyring; config: Config; audit: AuditRecorder; logger: Logger; aiUsage: AiUsageReader }): ApiKeys {
  const { identity, config, audit, logger } = deps;
  const store = createApiKeysStore(deps.store);
  const cache = createApiKeyCache({ store, pollIntervalMs: KEY_POLL_MS, onError: (error) => logger.warn({ err: error }, "api key poll failed") });
  const usage = createUsageTracker({ sink: store, flushIntervalMs: USAGE_FLUSH_MS, onError: (error) => logger.warn({ err: error }, "api key usage write failed") });
  const verifier = createApiKeyVerifier({ prefix: config.apiKeys.prefix, pepper: deps.keyring.apiKeyPepper, cache, userState: identity.userState });
  return {
    store,
    cache,
    usage,
    service: createApiKeyService({
      store,
      cache,
      verifier,
      usage,
      audit,
      accessTokens: identity.accessTokens,
      accessTokenTtlMs: config.tokens.accessTtlMs,
      pepper: deps.keyring.apiKeyPepper,
      policy: config.apiKeys,
      userState: identity.userState,
      aiUsage: deps.aiUsage,
    }),
    authenticator: createApiKeyAuthenticator({ verifier, cache, revocations: identity.revocations, usage, audit }),
    pollers: [
      cache,
      {
        start: () => usage.start(),
        stop: () => usage.stop().catch((error: unknown) => logger.error({ err: error }, "writing API key usage failed")),
      },
    ],
  };
}
