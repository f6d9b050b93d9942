import { readFileSync } from "node:fs";
import type { Config } from "../config/config.ts";
import type { AiUsageReader, ApiKeyAiUsage } from "../domain/api-keys/api-key-record.ts";
import type { ApiKeyCache } from "../domain/api-keys/api-key-cache.ts";
import { createAiQueries, type AiQueries } from "../domain/ai/ai-queries.ts";
import { createCredentialCache } from "../domain/ai/credential-cache.ts";
import { createCredentialEnvelope } from "../domain/ai/credential-envelope.ts";
import { createCredentialVault } from "../domain/ai/credential-vault.ts";
import { createProviderRegistry, type ProviderRegistry } from "../domain/ai/provider-registry.ts";
import { createTokenBudgets, type TokenBudgets } from "../domain/ai/token-budgets.ts";
import { countersOr, createUsageLedger, usageSubject, type UsageLedger } from "../domain/ai/usage-ledger.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createAiHandlers, type TtsEngineReport } from "../handlers/ai-service.ts";
import type { ServiceHandlers } from "../handlers/routes.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import { createProviders } from "../providers/create-providers.ts";
import { createAiUsageStore } from "../store/ai-usage-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createProviderCredentialsStore } from "../store/provider-credentials-store.ts";

const USAGE_FLUSH_MS = 5_000;
const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** The part of the AI layer the API-key service needs (usage per key and user), which exists before it. */
export interface AiFoundation {
  readonly ledger: UsageLedger;
  readonly usageReader: AiUsageReader;
}

export function createAiFoundation(deps: { store: Store; logger: Logger }): AiFoundation {
  const ledger = createUsageLedger({ store: createAiUsageStore(deps.store), flushIntervalMs: USAGE_FLUSH_MS, onError: (error) => deps.logger.warn({ err: error }, "ai usage write failed") });
  const usageReader: AiUsageReader = {
    async keyUsage(keyIds, at) {
      const subjects = keyIds.flatMap((id) => [usageSubject.key(id), usageSubject.day(id, at), usageSubject.month(id, at)]);
      const totals = await ledger.totals(subjects);
      const out = new Map<string, ApiKeyAiUsage>();
      for (const id of keyIds) {
        const all = totals.get(usageSubject.key(id));
        if (!all) continue;
        const day = countersOr(totals.get(usageSubject.day(id, at)));
        const month = countersOr(totals.get(usageSubject.month(id, at)));
        out.set(id, { queries: all.queries, inputTokens: all.inputTokens, outputTokens: all.outputTokens, latencyMs: all.latencyMs, spentToday: day.inputTokens + day.outputTokens, spentThisMonth: month.inputTokens + month.outputTokens });
      }
      return out;
    },
    async userUsage(scope) {
      const totals = "all" in scope ? await ledger.totalsWithPrefix(usageSubject.user("")) : await ledger.totals([usageSubject.user(scope.ownerUserId)]);
      const sum = { queries: 0, inputTokens: 0, outputTokens: 0, latencyMs: 0 };
      for (const c of totals.values()) {
        sum.queries += c.queries;
        sum.inputTokens += c.inputTokens;
        sum.outputTokens += c.outputTokens;
        sum.latencyMs += c.latencyMs;
      }
      return sum;
    },
  };
  ledger.start();
  return { ledger, usageReader };
}

export interface AiCapability {
  readonly queries: AiQueries;
  readonly registry: ProviderRegistry;
  readonly budgets: TokenBudgets;
  readonly handlers: NonNullable<ServiceHandlers["ai"]>;
  stop(): Promise<void>;
}

/**
 * Wires AiService: the provider adapters from PORTCULLIS_AI_PROVIDERS, the credential vault and its
 * cache, budgets read from the API-key cache (so UpdateApiKey reaches every instance within a second),
 * the usage ledger, and the handlers. Jobs and audio reuse `queries.open` (budget, retries, accounting
 * and audit included).
 */
export function createAi(deps: {
  store: Store;
  keyring: Keyring;
  config: Config;
  audit: AuditRecorder;
  logger: Logger;
  foundation: AiFoundation;
  keyCache: ApiKeyCache;
  /** The speech engine GetStatus reports (the audio service). */
  ttsEngine: TtsEngineReport;
}): AiCapability {
  const { config, audit, logger } = deps;
  const startedAt = Date.now();
  const envelope = createCredentialEnvelope(deps.keyring.encryptionKey);
  const credentialStore = createProviderCredentialsStore(deps.store);
  const cache = createCredentialCache({ store: credentialStore, envelope, audit, onError: (error) => logger.warn({ err: error }, "credential poll failed") });
  const registry = createProviderRegistry({ providers: createProviders(config.ai.providers), defaultProvider: config.ai.defaultProvider, credentials: cache, probeIntervalMs: config.ai.probeIntervalMs });
  const vault = createCredentialVault({ store: credentialStore, envelope, cache, audit, providerKind: registry.kindOf, keyVersion: config.ai.credentialKeyVersion });
  const budgets = createTokenBudgets({
    ledger: deps.foundation.ledger,
    budgetOf: async (keyId) => (await deps.keyCache.get(keyId))?.record.tokenBudget,
  });
  const queries = createAiQueries({
    registry,
    budgets,
    ledger: deps.foundation.ledger,
    audit,
    limits: config.ai,
    onRetry: (provider, error, attempt) => logger.info({ provider, failure: error.kind, status: error.status, attempt }, "retrying provider call"),
  });
  cache.start();
  registry.start();
  return {
    queries,
    registry,
    budgets,
    handlers: createAiHandlers({ queries, registry, vault: withReprobe(vault, registry), server: { version: VERSION, startedAt, ttsEngine: deps.ttsEngine } }),
    async stop() {
      cache.stop();
      await registry.stop();
      await deps.foundation.ledger.stop().catch((error: unknown) => logger.error({ err: error }, "writing ai usage failed"));
    },
  };
}

/** After a credential changes, the provider's health is probed again at once rather than at the next interval. */
function withReprobe(vault: ReturnType<typeof createCredentialVault>, registry: ProviderRegistry): ReturnType<typeof createCredentialVault> {
  return {
    ...vault,
    async put(ctx, input) {
      const result = await vault.put(ctx, input);
      void registry.probeAll();
      return result;
    },
    async delete(ctx, id) {
      await vault.delete(ctx, id);
      void registry.probeAll();
    },
  };
}
