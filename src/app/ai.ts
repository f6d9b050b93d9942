import { readFileSync } from "node:fs";
import type { Config } from "../config/config.ts";
import type { ApiKeyCache } from "../domain/api-keys/api-key-cache.ts";
import type { AiUsageReader } from "../domain/api-keys/api-key-record.ts";
import { createAiQueries, type AiQueries } from "../domain/ai/ai-queries.ts";
import { createCredentialCache } from "../domain/ai/credential-cache.ts";
import { createCredentialEnvelope } from "../domain/ai/credential-envelope.ts";
import { createCredentialVault, reprobingVault, type CredentialVault } from "../domain/ai/credential-vault.ts";
import { createProviderRegistry, type ProviderRegistry } from "../domain/ai/provider-registry.ts";
import { createTokenBudgets } from "../domain/ai/token-budgets.ts";
import { createUsageLedger, type UsageLedger } from "../domain/ai/usage-ledger.ts";
import { createAiUsageReader } from "../domain/ai/usage-reader.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import { createProviders } from "../providers/create-providers.ts";
import { createAiUsageStore } from "../store/ai-usage-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createProviderCredentialsStore } from "../store/provider-credentials-store.ts";
import type { Poller } from "./background.ts";

const USAGE_FLUSH_MS = 5_000;
/** The gateway's version, as GetStatus reports it. */
export const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** AI usage accounting: built before the API keys, which show each key's usage and budgets. */
export interface AiUsage {
  readonly ledger: UsageLedger;
  readonly reader: AiUsageReader;
  /** The ledger's writer (it writes what is left when stopped). */
  readonly pollers: readonly Poller[];
}

export function createAiUsage(deps: { store: Store; logger: Logger }): AiUsage {
  const { logger } = deps;
  const ledger = createUsageLedger({ store: createAiUsageStore(deps.store), flushIntervalMs: USAGE_FLUSH_MS, onError: (error) => logger.warn({ err: error }, "ai usage write failed") });
  return {
    ledger,
    reader: createAiUsageReader(ledger),
    pollers: [{ start: () => ledger.start(), stop: () => ledger.stop().catch((error: unknown) => logger.error({ err: error }, "writing ai usage failed")) }],
  };
}

/** AiService's domain: queries (budget, retries, accounting and audit included), providers, the vault. */
export interface Ai {
  readonly queries: AiQueries;
  readonly registry: ProviderRegistry;
  readonly vault: CredentialVault;
  /** The credential cache's poller and the providers' health probes. */
  readonly pollers: readonly Poller[];
}

/**
 * Wires AiService from the usage ledger and the API keys' cache: the provider adapters from
 * PORTCULLIS_AI_PROVIDERS, the credential vault and its cache, budgets read from the key cache (so
 * UpdateApiKey reaches every instance within a second). Jobs and audio reuse `queries.open`.
 */
export function createAi(deps: { store: Store; keyring: Keyring; config: Config; audit: AuditRecorder; logger: Logger; usage: AiUsage; keyCache: ApiKeyCache }): Ai {
  const { config, audit, logger } = deps;
  const envelope = createCredentialEnvelope(deps.keyring.encryptionKey);
  const credentialStore = createProviderCredentialsStore(deps.store);
  const cache = createCredentialCache({ store: credentialStore, envelope, audit, onError: (error) => logger.warn({ err: error }, "credential poll failed") });
  const registry = createProviderRegistry({
    providers: createProviders(config.ai.providers),
    defaultProvider: config.ai.defaultProvider,
    credentials: cache,
    probeIntervalMs: config.ai.probeIntervalMs,
  });
  const vault = createCredentialVault({ store: credentialStore, envelope, cache, audit, providerKind: registry.kindOf, keyVersion: config.ai.credentialKeyVersion });
  const budgets = createTokenBudgets({ ledger: deps.usage.ledger, budgetOf: async (keyId) => (await deps.keyCache.get(keyId))?.record.tokenBudget });
  const queries = createAiQueries({
    registry,
    budgets,
    ledger: deps.usage.ledger,
    audit,
    limits: config.ai,
    onRetry: (provider, error, attempt) => logger.info({ provider, failure: error.kind, status: error.status, attempt }, "retrying provider call"),
  });
  return { queries, registry, vault: reprobingVault(vault, registry), pollers: [cache, registry] };
}
