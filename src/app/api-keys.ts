import type { Config } from "../config/config.ts";
import { createApiKeyCache, type ApiKeyCache } from "../domain/api-keys/api-key-cache.ts";
import type { AiUsageReader } from "../domain/api-keys/api-key-record.ts";
import { createApiKeyVerifier } from "../domain/api-keys/api-key-verifier.ts";
import { createApiKeyService, type ApiKeyService } from "../domain/api-keys/api-keys.ts";
import { looksLikeApiKey } from "../domain/api-keys/key-format.ts";
import { createUsageTracker, type UsageTracker } from "../domain/api-keys/usage-tracker.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createApiKeyAuthenticator, type ApiKeyAuthenticator } from "../domain/auth/api-key-authenticator.ts";
import type { ApiKeyMassRevoker } from "../domain/auth/emergency-revoke.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import { createApiKeysStore, type ApiKeysStore } from "../store/api-keys-store.ts";
import type { Store } from "../store/mongo-store.ts";
import type { Identity } from "./identity.ts";

// Every instance reads key changes this often: well inside the one-second promise.
const KEY_POLL_MS = 250;
const USAGE_FLUSH_MS = 5_000;

/** The parts of the API-key layer that exist before the identity layer (which EmergencyRevoke needs). */
export interface ApiKeyFoundation {
  readonly store: ApiKeysStore;
  readonly cache: ApiKeyCache;
  readonly massRevoker: ApiKeyMassRevoker;
}

export function createApiKeyFoundation(deps: { store: Store; logger: Logger }): ApiKeyFoundation {
  const store = createApiKeysStore(deps.store);
  const cache = createApiKeyCache({ store, pollIntervalMs: KEY_POLL_MS, onError: (error) => deps.logger.warn({ err: error }, "api key poll failed") });
  return {
    store,
    cache,
    massRevoker: {
      async revokeAll(reason) {
        const targets = await store.unrevoked({ all: true });
        const at = new Date();
        const count = await store.revoke(targets, { reason, revokedBy: "emergency", at });
        for (const t of targets) cache.noteRevocation({ _id: t.keyId, ownerUserId: t.ownerUserId, revokedAt: at, reason, revokedBy: "emergency" });
        return count;
      },
    },
  };
}

export interface ApiKeys {
  readonly service: ApiKeyService;
  readonly authenticator: ApiKeyAuthenticator;
  readonly usage: UsageTracker;
  /** Whether a bearer value is meant as an API key (has the configured prefix). */
  isApiKey(value: string): boolean;
  /** Stops polling and writes the usage counts still in memory. */
  stop(): Promise<void>;
}

/** Wires key verification, usage counting and the lifecycle service on top of the identity layer. */
export function createApiKeys(deps: { foundation: ApiKeyFoundation; identity: Identity; keyring: Keyring; config: Config; audit: AuditRecorder; logger: Logger; aiUsage?: AiUsageReader }): ApiKeys {
  const { foundation, identity, config, audit, logger } = deps;
  const policy = config.apiKeys;
  const usage = createUsageTracker({ sink: foundation.store, flushIntervalMs: USAGE_FLUSH_MS, onError: (error) => logger.warn({ err: error }, "api key usage write failed") });
  const verifier = createApiKeyVerifier({ prefix: policy.prefix, pepper: deps.keyring.apiKeyPepper, cache: foundation.cache, userState: identity.currentUserState });
  const authenticator = createApiKeyAuthenticator({ verifier, cache: foundation.cache, revocations: identity.revocations, usage, audit });
  const service = createApiKeyService({
    store: foundation.store,
    cache: foundation.cache,
    verifier,
    usage,
    audit,
    accessTokens: identity.accessTokens,
    accessTokenTtlMs: config.tokens.accessTtlMs,
    pepper: deps.keyring.apiKeyPepper,
    policy,
    userState: identity.currentUserState,
    ...(deps.aiUsage ? { aiUsage: deps.aiUsage } : {}),
  });
  foundation.cache.start();
  usage.start();
  return {
    service,
    authenticator,
    usage,
    isApiKey: (value) => looksLikeApiKey(policy.prefix, value),
    async stop() {
      foundation.cache.stop();
      await usage.stop();
    },
  };
}
