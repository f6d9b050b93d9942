import type { Config } from "../config/config.ts";
import { createAuditRecorder, type AuditRecorder } from "../domain/audit/audit-recorder.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import type { ServerDeps } from "../server.ts";
import { createAuditStore } from "../store/audit-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createCredentialRouter } from "../domain/auth/credential-router.ts";
import { createApiKeyHandlers, createExchangeApiKeyHandler } from "../handlers/api-key-service.ts";
import { createApiKeyFoundation, createApiKeys, type ApiKeys } from "./api-keys.ts";
import { createIdentity, type Identity } from "./identity.ts";

/** Everything a gateway process runs on top of its store: the capabilities and what the server needs of them. */
export interface Gateway {
  readonly audit: AuditRecorder;
  readonly identity: Identity;
  readonly apiKeys: ApiKeys;
  /** The server's view of the capabilities: authentication, fresh MFA, the service implementations, JWKS. */
  readonly serverDeps: Required<Pick<ServerDeps, "authenticator" | "freshMfa" | "services" | "jwks">>;
  /** Stops background work (pollers, sweepers) and writes every queued audit event. */
  stop(): Promise<void>;
}

/**
 * The composition root shared by main.ts, the CLI's server-less commands and the tests: one place
 * where every capability is wired from the store, the keyring and the configuration.
 */
export async function createGateway(deps: { store: Store; keyring: Keyring; config: Config; logger: Logger }): Promise<Gateway> {
  const { store, keyring, config, logger } = deps;
  const audit = createAuditRecorder({
    store: createAuditStore(store),
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
  apiKeys = createApiKeys({ foundation, identity, keyring, config, audit, logger });
  return {
    audit,
    identity,
    apiKeys,
    serverDeps: {
      authenticator: createCredentialRouter({ tokens: identity.authenticator, apiKeys: apiKeys.authenticator, isApiKey: apiKeys.isApiKey }),
      freshMfa: identity.freshMfa,
      services: {
        auth: { ...identity.authHandlers, ...createExchangeApiKeyHandler(apiKeys.service) },
        apiKey: createApiKeyHandlers(apiKeys.service),
      },
      jwks: () => identity.signingKeys.jwks(),
    },
    async stop() {
      identity.stop();
      await apiKeys.stop().catch((error: unknown) => logger.error({ err: error }, "writing API key usage failed"));
      await audit.flush();
    },
  };
}
