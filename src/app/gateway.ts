import type { Config } from "../config/config.ts";
import { createChainSealer } from "../domain/audit/audit-chain.ts";
import { deriveAuditKeys } from "../domain/audit/audit-keys.ts";
import { createAuditRecorder, type AuditRecorder } from "../domain/audit/audit-recorder.ts";
import type { ResponseActions } from "../domain/audit/auto-response.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import type { ServerDeps } from "../server.ts";
import { createAuditStore } from "../store/audit-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createAuditCapability, type AuditCapability } from "./audit.ts";
import { createIdentity, type Identity } from "./identity.ts";

/** Everything a gateway process runs on top of its store: the capabilities and what the server needs of them. */
export interface Gateway {
  readonly audit: AuditRecorder;
  readonly auditService: AuditCapability;
  readonly identity: Identity;
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
  const auditKeys = deriveAuditKeys(keyring.encryptionKey);
  const sealer = createChainSealer(auditKeys.seal);
  const auditStore = createAuditStore(store, sealer);
  const audit = createAuditRecorder({
    store: auditStore,
    onError: (error) => logger.error({ err: error }, "audit write failed"),
  });
  const identity = await createIdentity({ store, keyring, config, audit, logger });
  // The API-key service adds `revokeApiKey` here when it lands; until then a policy naming it is refused.
  const actions: ResponseActions = identity.responseActions;
  let auditService: AuditCapability;
  try {
    auditService = createAuditCapability({ store, auditStore, sealer, cursorKey: auditKeys.cursor, audit, signingKeys: identity.signingKeys, actions, config, logger });
  } catch (error) {
    identity.stop();
    throw error;
  }
  return {
    audit,
    auditService,
    identity,
    serverDeps: {
      authenticator: identity.authenticator,
      freshMfa: identity.freshMfa,
      services: { auth: identity.authHandlers, audit: auditService.handlers },
      jwks: () => identity.signingKeys.jwks(),
    },
    async stop() {
      auditService.stop();
      identity.stop();
      await audit.flush();
    },
  };
}
