import type { Config } from "../config/config.ts";
import { auditActorOf, userAuditActor } from "../domain/audit/audit-actor.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import type { ResponseActions } from "../domain/audit/auto-response.ts";
import { createAccountLocks } from "../domain/auth/account-locks.ts";
import { createEmergencyRevoke, type ApiKeyMassRevoker } from "../domain/auth/emergency-revoke.ts";
import { createLoginService } from "../domain/auth/login.ts";
import { createLoginThrottle } from "../domain/auth/login-throttle.ts";
import { createMfaActions } from "../domain/auth/mfa-actions.ts";
import { createSessionActions } from "../domain/auth/session-actions.ts";
import { createStepUpAttempts } from "../domain/auth/step-up-attempts.ts";
import { createTokenAuthenticator } from "../domain/auth/token-authenticator.ts";
import { createSecretBox } from "../domain/crypto/secret-box.ts";
import { deriveBackupCodeKey } from "../domain/mfa/backup-codes.ts";
import { createMfaService } from "../domain/mfa/mfa.ts";
import { createPasswordHasher } from "../domain/passwords/password-hasher.ts";
import { createRevocationCache, type RevocationCache, type UserState } from "../domain/revocation/revocation-cache.ts";
import type { Principal } from "../domain/principal.ts";
import { createSessionService } from "../domain/sessions/sessions.ts";
import { createAccessTokenService, type AccessTokenService } from "../domain/tokens/access-tokens.ts";
import { createSigningKeySet, type SigningKeySet } from "../domain/tokens/signing-keys.ts";
import { createUserNames } from "../domain/users/user-names.ts";
import { createUsersService } from "../domain/users/users.ts";
import { createAuthHandlers } from "../handlers/auth-service.ts";
import type { Authenticator } from "../interceptors/authentication.ts";
import type { FreshMfaVerifier } from "../interceptors/authorization.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import { createAccountLocksStore } from "../store/account-locks-store.ts";
import { createLoginThrottleStore } from "../store/login-throttle-store.ts";
import { createMfaStore } from "../store/mfa-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createRefreshTokensStore } from "../store/refresh-tokens-store.ts";
import { createRevocationStore } from "../store/revocation-store.ts";
import { createSessionsStore } from "../store/sessions-store.ts";
import { createSigningKeysStore } from "../store/signing-keys-store.ts";
import { createUsersStore } from "../store/users-store.ts";

/** The JWT signing keys as configured: shared by the gateway and the CLI's rotate-signing-key. */
export function openSigningKeySet(deps: { store: Store; keyring: Keyring; config: Config }): Promise<SigningKeySet> {
  const { store, keyring, config } = deps;
  return createSigningKeySet({
    keyring,
    keyFile: config.keyFile,
    store: createSigningKeysStore(store),
    accessTokenTtlMs: config.tokens.accessTtlMs,
    leewayMs: config.tokens.leewayMs,
    rotateAfterMs: config.tokens.signingKeyRotationMs,
  });
}

/** Everything the server needs from the identity layer. */
export interface Identity {
  readonly authenticator: Authenticator;
  readonly freshMfa: FreshMfaVerifier;
  readonly authHandlers: ReturnType<typeof createAuthHandlers>;
  readonly signingKeys: SigningKeySet;
  readonly revocations: RevocationCache;
  readonly accessTokens: AccessTokenService;
  /** A user's current role and disabled flag: from the revocation cache, the database when not cached yet. */
  currentUserState(userId: string): Promise<UserState | undefined>;
  /** The automatic response's account and session actions (the audit service's policy drives them). */
  readonly responseActions: ResponseActions;
  /** Re-enables accounts whose automatic lock has expired (also done every 30 s); resolves with how many. */
  releaseExpiredLocks(): Promise<number>;
  /** Whether any owner exists (the start-up hint that says how to bootstrap one). */
  anyOwnerExists(): Promise<boolean>;
  /** Stops the revocation poller. */
  stop(): void;
}

// How often each instance reads revocations and user changes: well inside the 1-second promise.
const REVOCATION_POLL_MS = 250;
const SIGNING_KEY_REFRESH_MS = 1_000;
const SWEEP_INTERVAL_MS = 10 * 60_000;
const LOCK_RELEASE_MS = 30_000;

/**
 * Wires accounts, passwords, tokens, sessions, MFA and revocation from the store, the keyring and the
 * configuration: the composition root of the identity layer, shared by main.ts and the tests.
 */
export async function createIdentity(deps: {
  store: Store;
  keyring: Keyring;
  config: Config;
  audit: AuditRecorder;
  logger: Logger;
  /** EmergencyRevoke's reach into the API keys. */
  apiKeyRevoker: ApiKeyMassRevoker;
  /** Principals of tokens exchanged for API keys; bound once the API-key layer exists (built on this one). */
  exchangedKeyPrincipal?: () => ((input: { keyId: string; claimedPermissions: readonly string[]; clientIp: string }) => Promise<Principal>) | undefined;
}): Promise<Identity> {
  const { store, keyring, config, audit, logger } = deps;
  const usersStore = createUsersStore(store);
  // One lock for password guesses at login and for secrets re-proved in a session (fresh MFA, ChangePassword).
  const throttle = createLoginThrottle({ store: createLoginThrottleStore(store) });
  const stepUp = createStepUpAttempts({ throttle, audit });
  const users = createUsersService({ usersStore, hasher: createPasswordHasher(config.passwordHash), audit, stepUp });
  await users.backfillIdentifierClaims();
  const userNames = createUserNames({ load: async (userId) => (await usersStore.findById(userId))?.username });

  const signingKeys = await openSigningKeySet({ store, keyring, config });
  const accessTokens = createAccessTokenService({
    keys: signingKeys,
    issuer: config.tokens.issuer,
    audience: config.tokens.audience,
    ttlMs: config.tokens.accessTtlMs,
    leewayMs: config.tokens.leewayMs,
  });

  const revocations = createRevocationCache({
    store: createRevocationStore(store),
    pollIntervalMs: REVOCATION_POLL_MS,
    retentionMs: config.tokens.accessTtlMs + config.tokens.leewayMs,
    onError: (error) => logger.warn({ err: error }, "revocation poll failed"),
  });
  await revocations.start();
  // Keys published (or retired) by other instances become known here within a second.
  const keyRefresh = setInterval(() => {
    signingKeys.refresh().catch((error: unknown) => logger.warn({ err: error }, "signing key refresh failed"));
  }, SIGNING_KEY_REFRESH_MS);
  keyRefresh.unref();

  const sessionsStore = createSessionsStore(store);
  const refreshTokensStore = createRefreshTokensStore(store);
  // No TTL indexes on FerretDB: expired sessions and refresh tokens are swept here, and expiry is
  // checked on every read anyway, so a late sweep costs disk space, never correctness.
  const sweep = setInterval(() => {
    const now = new Date();
    Promise.all([sessionsStore.sweepExpired(now), refreshTokensStore.sweepExpired(now)]).catch((error: unknown) =>
      logger.warn({ err: error }, "sweeping expired sessions failed"),
    );
  }, SWEEP_INTERVAL_MS);
  sweep.unref();
  const sessions = createSessionService({
    sessions: sessionsStore,
    refreshTokens: refreshTokensStore,
    refreshTtlMs: config.tokens.refreshTtlMs,
    onReuse: (session) => {
      revocations.noteSessionRevoked(session.id);
      const record = (username: string | undefined) =>
        audit.record({
          type: "auth.refresh_reuse",
          outcome: "denied",
          actor: userAuditActor(session.userId, username ?? session.userId),
          target: { kind: "session", id: session.id },
          reason: "a rotated refresh token was presented again; the session was revoked",
        });
      userNames.nameOf(session.userId).then(record, () => record(undefined));
    },
  });

  const mfa = createMfaService({
    store: createMfaStore(store),
    secretBox: createSecretBox(keyring.encryptionKey),
    backupCodeKey: deriveBackupCodeKey(keyring.encryptionKey),
  });
  const mfaActions = createMfaActions({ mfa, audit });

  const currentState = async (userId: string) => {
    const cached = revocations.userState(userId);
    if (cached) return cached;
    const user = await usersStore.findById(userId);
    if (!user) return undefined;
    const state = { role: user.role, disabled: user.disabled };
    revocations.noteUserChanged(userId, state);
    return state;
  };

  const login = createLoginService({
    users,
    throttle,
    mfa,
    sessions,
    accessTokens,
    audit,
    userName: (userId) => userNames.nameOf(userId),
    currentRole: async (userId) => {
      const state = await currentState(userId);
      return state && !state.disabled ? state.role : undefined;
    },
  });

  const freshMfa: FreshMfaVerifier = {
    async verify(principal, code, call) {
      const user = await usersStore.findById(principal.userId);
      if (!user) return false;
      const caller = { userId: user._id, usernameKey: user.usernameKey, username: user.username, ...call };
      return (await stepUp.attempt(caller, "mfa.verify", () => mfaActions.verifyFresh(user._id, code, { ...call, actor: auditActorOf(principal) }))) !== undefined;
    },
  };

  const sessionActions = createSessionActions({ sessions, accessTokens, revocations, audit, userState: currentState });
  const accountLocks = createAccountLocks({
    users: usersStore,
    locks: createAccountLocksStore(store),
    revokeSessions: (userId, reason) => sessionActions.revokeUserSessions(userId, reason),
    noteUserChanged: (user) => revocations.noteUserChanged(user._id, { role: user.role, disabled: user.disabled }),
    audit,
  });
  const lockRelease = setInterval(() => {
    accountLocks.releaseDue().catch((error: unknown) => logger.warn({ err: error }, "releasing expired account locks failed"));
  }, LOCK_RELEASE_MS);
  lockRelease.unref();
  const responseActions: ResponseActions = {
    lockAccount: (userId, durationMs, cause) => accountLocks.lock(userId, durationMs, cause),
    async revokeSessionFamily(sessionId) {
      const revoked = await sessions.revoke(sessionId, "auto_response");
      if (revoked) revocations.noteSessionRevoked(sessionId);
      return revoked;
    },
  };
  return {
    authenticator: createTokenAuthenticator({
      accessTokens,
      revocations,
      loadUserState: currentState,
      userName: (userId) => userNames.nameOf(userId),
      ...(deps.exchangedKeyPrincipal ? { exchangedKeyPrincipal: deps.exchangedKeyPrincipal } : {}),
    }),
    freshMfa,
    authHandlers: createAuthHandlers({
      login,
      users,
      mfa: mfaActions,
      sessions: sessionActions,
      emergencyRevoke: createEmergencyRevoke({ sessions, apiKeys: deps.apiKeyRevoker, audit, refreshRevocations: () => revocations.pollNow() }),
      signingKeys,
      revocations,
      freshMfa,
    }),
    signingKeys,
    revocations,
    accessTokens,
    currentUserState: currentState,
    responseActions,
    releaseExpiredLocks: () => accountLocks.releaseDue(),
    anyOwnerExists: () => usersStore.anyOwnerExists(),
    stop: () => {
      clearInterval(keyRefresh);
      clearInterval(sweep);
      clearInterval(lockRelease);
      revocations.stop();
    },
  };
}
