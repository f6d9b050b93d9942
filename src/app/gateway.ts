import type { Config } from "../config/config.ts";
import { createChainSealer } from "../domain/audit/audit-chain.ts";
import { deriveAuditKeys } from "../domain/audit/audit-keys.ts";
import { createAuditRecorder, type AuditRecorder } from "../domain/audit/audit-recorder.ts";
import type { ResponseActions } from "../domain/audit/auto-response.ts";
import type { Keyring } from "../keys/keyring.ts";
import { checkSharedKeys } from "../keys/shared-keys-check.ts";
import type { Logger } from "../log/logger.ts";
import type { ServerDeps } from "../server.ts";
import { createAuditStore } from "../store/audit-store.ts";
import { createKeyFingerprintsStore } from "../store/key-fingerprints-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createCredentialRouter } from "../domain/auth/credential-router.ts";
import { createApiKeyHandlers, createExchangeApiKeyHandler } from "../handlers/api-key-service.ts";
import { createAi, createAiFoundation, type AiCapability } from "./ai.ts";
import { createApiKeyFoundation, createApiKeys, type ApiKeys } from "./api-keys.ts";
import { createAudioCapability, createAudioHandlers, type AudioCapability } from "./audio.ts";
import { createAuditCapability, type AuditCapability } from "./audit.ts";
import { createIdentity, type Identity } from "./identity.ts";

/** Everything a gateway process runs on top of its store: the capabilities and what the server needs of them. */
export interface Gateway {
  readonly audit: AuditRecorder;
  readonly auditService: AuditCapability;
  readonly identity: Identity;
  readonly apiKeys: ApiKeys;
  readonly audio: AudioCapability;
  readonly ai: AiCapability;
  /** The server's view of the capabilities: authentication, fresh MFA, the service implementations, JWKS. */
  readonly serverDeps: Required<Pick<ServerDeps, "authenticator" | "freshMfa" | "services" | "jwks" | "audit">>;
  /** Stops background work (pollers, sweepers) and writes every queued audit event. */
  stop(): Promise<void>;
}

/**
 * The composition root shared by main.ts, the CLI's server-less commands and the tests: one place
 * where every capability is wired from the store, the keyring and the configuration.
 */
export async function createGateway(deps: { store: Store; keyring: Keyring; config: Config; logger: Logger }): Promise<Gateway> {
  const { store, keyring, config, logger } = deps;
  await checkSharedKeys(keyring, createKeyFingerprintsStore(store));
  const auditKeys = deriveAuditKeys(keyring.encryptionKey);
  const sealer = createChainSealer(auditKeys.seal);
  const auditStore = createAuditStore(store, sealer);
  const audit = createAuditRecorder({
    store: auditStore,
    onError: (error) => logger.error({ err: error }, "audit write failed"),
  });
  const foundation = createApiKeyFoundation({ store, logger });
  let apiKeys: ApiKeys | undefined;
  const identity = await createIdentity({
    store,
    keyring,
    config,
    audit,
    logger,
    apiKeyRevoker: foundation.massRevoker,
    exchangedKeyPrincipal: () => apiKeys?.authenticator.exchangedTokenPrincipal,
  });
  const aiFoundation = createAiFoundation({ store, logger });
  const keys = createApiKeys({ foundation, identity, keyring, config, audit, logger, aiUsage: aiFoundation.usageReader });
  apiKeys = keys;
  const actions: ResponseActions = { ...identity.responseActions, revokeApiKey: (keyId, cause) => keys.service.revokeForResponse(keyId, `automatic response to ${cause.kind} (${cause.severity})`) };
  let auditService: AuditCapability;
  try {
    auditService = createAuditCapability({ store, auditStore, sealer, cursorKey: auditKeys.cursor, audit, signingKeys: identity.signingKeys, actions, apiKeyIdsOf: (userId) => foundation.store.keyIdsOf(userId), config, logger });
  } catch (error) {
    identity.stop();
    await keys.stop().catch(() => undefined);
    await aiFoundation.ledger.stop().catch(() => undefined);
    throw error;
  }
  const audio = createAudioCapability({ config, audit, logger });
  const ai = createAi({ store, keyring, config, audit, logger, foundation: aiFoundation, keyCache: foundation.cache, ttsEngine: audio.service });
  return {
    audit,
    auditService,
    identity,
    apiKeys: keys,
    audio,
    ai,
    serverDeps: {
      authenticator: createCredentialRouter({ tokens: identity.authenticator, apiKeys: keys.authenticator, isApiKey: keys.isApiKey }),
      freshMfa: identity.freshMfa,
      services: {
        auth: { ...identity.authHandlers, ...createExchangeApiKeyHandler(keys.service) },
        apiKey: createApiKeyHandlers(keys.service),
        audit: auditService.handlers,
        audioStream: createAudioHandlers({ audio, answers: ai.queries, audit }),
        ai: ai.handlers,
      },
      jwks: () => identity.signingKeys.jwks(),
      audit,
    },
    async stop() {
      await audio.stop();
      auditService.stop();
      await ai.stop();
      identity.stop();
      await keys.stop().catch((error: unknown) => logger.error({ err: error }, "writing API key usage failed"));
      await audit.flush();
    },
  };
}
