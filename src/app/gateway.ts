import type { Config } from "../config/config.ts";
import { createChainSealer } from "../domain/audit/audit-chain.ts";
import { deriveAuditKeys } from "../domain/audit/audit-keys.ts";
import { createAuditRecorder, type AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createResponseActions } from "../domain/audit/response-actions.ts";
import { createCredentialRouter } from "../domain/auth/credential-router.ts";
import { createEmergencyRevoke } from "../domain/auth/emergency-revoke.ts";
import { createChangeFeed } from "../domain/changes/change-feed.ts";
import type { SigningKeySet } from "../domain/tokens/signing-keys.ts";
import { createAiHandlers } from "../handlers/ai-service.ts";
import { createApiKeyHandlers, createExchangeApiKeyHandler } from "../handlers/api-key-service.ts";
import { createAudioStreamHandlers } from "../handlers/audio-stream-service.ts";
import { createAuditHandlers } from "../handlers/audit-service.ts";
import { createAuthHandlers } from "../handlers/auth-service.ts";
import { createJobHandlers } from "../handlers/ai-jobs.ts";
import type { Keyring } from "../keys/keyring.ts";
import { checkSharedKeys } from "../keys/shared-keys-check.ts";
import type { Logger } from "../log/logger.ts";
import { createAuditStore } from "../store/audit-store.ts";
import { createChangeMarksStore } from "../store/change-marks-store.ts";
import { createKeyFingerprintsStore } from "../store/key-fingerprints-store.ts";
import type { Store } from "../store/mongo-store.ts";
import type { ServerDeps } from "../transport/server.ts";
import { createAi, createAiUsage, VERSION } from "./ai.ts";
import { createApiKeys } from "./api-keys.ts";
import { type Audio, createAudio } from "./audio.ts";
import { createAudit } from "./audit.ts";
import { createBackground } from "./background.ts";
import { gatewaySettingsOf } from "./gateway-settings.ts";
import { createIdentity } from "./identity.ts";
import { createJobs, type Jobs } from "./jobs.ts";

/** What the server needs of a gateway: authentication, fresh MFA, the service implementations, JWKS, the denial audit. */
export type GatewayServerDeps = Required<Pick<ServerDeps, "authenticator" | "freshMfa" | "services" | "jwks" | "audit">>;

/** Everything a gateway process runs on top of its store. */
export interface Gateway {
  readonly audit: AuditRecorder;
  readonly serverDeps: GatewayServerDeps;
  readonly signingKeys: SigningKeySet;
  /** The speech service and engine, to observe (open streams, engine processes). */
  readonly audio: Pick<Audio, "service" | "engine">;
  /** Scheduled work, run now rather than at its next period (tests; an operator's "now"). */
  readonly runNow: {
    /** Re-enables accounts whose automatic lock has expired; resolves with how many. */
    releaseExpiredLocks(): Promise<number>;
    /** One audit retention sweep; resolves with the number of events deleted. */
    sweepAuditRetention(): Promise<number>;
    /** Evaluates the automatic response policy; resolves with the number of actions taken. */
    respondToFindings(): Promise<number>;
    /** Writes this instance's API-key usage counts. */
    writeKeyUsage(): Promise<void>;
    /** One job-event retention sweep as of `at` (default now); resolves with the number of jobs swept. */
    sweepJobRetention(at?: Date): Promise<number>;
  };
  /** Submits jobs as the SubmitJob handler does (for benchmarks that count the queue's database work). */
  readonly jobSubmission: Jobs["submission"];
  /**
   * Graceful shutdown of this instance's job workers, alongside the server's drain: running jobs finish
   * within `timeoutMs`, the rest are handed to other instances at once (main.ts, on SIGTERM).
   */
  drainJobs(timeoutMs: number): Promise<void>;
  /** Whether any owner exists (the start-up hint that says how to bootstrap one). */
  anyOwnerExists(): Promise<boolean>;
  /** Starts now what otherwise starts on first use (the speech engine's processes): main.ts, once listening. */
  warmUp(): void;
  /** Stops background work (pollers, sweepers) and writes every queued audit event and usage count. */
  stop(): Promise<void>;
}

/**
 * The composition root shared by main.ts, the CLI and the tests, wiring in one direction: the audit
 * recorder → identity (revocation, user state, tokens, sessions, MFA) → AI usage accounting → API keys
 * (which show it) → the authenticator (a credential router that resolves exchanged tokens through their
 * keys) → the audit service → AI and speech → handlers; then the background work starts, all of it in
 * one place. Nothing is bound late.
 */
export async function createGateway(deps: { store: Store; keyring: Keyring; config: Config; logger: Logger }): Promise<Gateway> {
  const { store, keyring, config, logger } = deps;
  const settings = gatewaySettingsOf(config);
  await checkSharedKeys(keyring, createKeyFingerprintsStore(store));
  const auditKeys = deriveAuditKeys(keyring.encryptionKey);
  const sealer = createChainSealer(auditKeys.seal);
  const auditStore = createAuditStore(store, sealer);
  const audit = createAuditRecorder({ store: auditStore, onError: (error) => logger.error({ err: error }, "audit write failed") });

  const identity = await createIdentity({ store, keyring, config, audit, logger });
  const aiUsage = createAiUsage({ store, logger });
  const apiKeys = createApiKeys({ store, identity, keyring, config, audit, logger, aiUsage: aiUsage.reader });
  const authenticator = createCredentialRouter({
    accessTokens: identity.accessTokens,
    revocations: identity.revocations,
    userState: identity.userState,
    userName: (userId) => identity.userNames.nameOf(userId),
    apiKeys: apiKeys.authenticator,
    keyPrefix: config.apiKeys.prefix,
  });
  const auditService = createAudit({
    store,
    auditStore,
    sealer,
    cursorKey: auditKeys.cursor,
    audit,
    signingKeys: identity.signingKeys,
    actions: createResponseActions({ accountLocks: identity.accountLocks, sessions: identity.sessions, revocations: identity.revocations, apiKeys: apiKeys.service }),
    apiKeyIdsOf: (userId) => apiKeys.store.keyIdsOf(userId),
    config,
    settings,
    logger,
  });
  const ai = createAi({ store, keyring, config, audit, logger, usage: aiUsage, keyCache: apiKeys.cache });
  const audio = createAudio({ config, audit, logger, answers: ai.queries });
  const jobs = createJobs({ store, keyring, config, audit, logger, ai });
  // One timer for every cache that follows the database: it reads the change marks and refreshes only
  // what moved (with nothing changing, one read of a few documents per period).
  const feed = createChangeFeed({ marks: createChangeMarksStore(store), onError: (error, follower) => logger.warn({ err: error, follower }, "change feed refresh failed") });
  for (const follower of [...identity.followers, ...apiKeys.followers, ...ai.followers]) feed.follow(follower);
  const emergencyRevoke = createEmergencyRevoke({ sessions: identity.sessions, apiKeys: apiKeys.service, audit, refreshRevocations: () => identity.revocations.pollNow() });
  const services: GatewayServerDeps["services"] = {
    auth: {
      ...createAuthHandlers({
        login: identity.login,
        users: identity.users,
        profiles: identity.profiles,
        mfa: identity.mfa,
        sessions: identity.sessionActions,
        emergencyRevoke,
        signingKeys: identity.signingKeys,
        revocations: identity.revocations,
        freshMfa: identity.freshMfa,
      }),
      ...createExchangeApiKeyHandler(apiKeys.service),
    },
    apiKey: createApiKeyHandlers(apiKeys.service),
    audit: createAuditHandlers({ log: auditService.log, exports: auditService.exports, watch: auditService.watch, suspicious: auditService.suspicious }),
    ai: {
      ...createAiHandlers({ queries: ai.queries, registry: ai.registry, vault: ai.vault, server: { version: VERSION, startedAt: Date.now(), ttsEngine: audio.service } }),
      ...createJobHandlers({ submission: jobs.submission, service: jobs.service, exporter: jobs.exporter }),
    },
    audioStream: createAudioStreamHandlers(audio.service, audio.conversations),
  };

  const background = createBackground({
    tasks: [...identity.tasks, ...auditService.tasks, ...jobs.tasks],
    // Stopped in reverse: speech first (its streams end), then jobs (running ones handed over), AI, audit,
    // keys, identity. The feed last: it starts once the caches it refreshes have loaded, and stops first.
    pollers: [...identity.pollers, ...aiUsage.pollers, ...apiKeys.pollers, ...auditService.pollers, ...ai.pollers, ...jobs.pollers, ...audio.pollers, feed],
    logger,
  });
  await background.start().catch(async (error: unknown) => {
    await background.stop();
    throw error;
  });

  return {
    audit,
    serverDeps: { authenticator, freshMfa: identity.freshMfa, services, jwks: () => identity.signingKeys.jwks(), audit },
    signingKeys: identity.signingKeys,
    audio,
    runNow: {
      releaseExpiredLocks: () => identity.accountLocks.releaseDue(),
      sweepAuditRetention: auditService.sweep,
      respondToFindings: () => auditService.suspicious.respond(),
      writeKeyUsage: () => apiKeys.usage.flush(),
      sweepJobRetention: (at) => jobs.sweepRetention(at),
    },
    jobSubmission: jobs.submission,
    drainJobs: (timeoutMs) => jobs.drain(timeoutMs),
    anyOwnerExists: () => identity.usersStore.anyOwnerExists(),
    warmUp: () => audio.warmUp(),
    async stop() {
      await background.stop();
      await audit.flush();
    },
  };
}
