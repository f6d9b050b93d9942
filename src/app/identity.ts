import type { Config } from "../config/config.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createAccountLocks, type AccountLocks } from "../domain/auth/account-locks.ts";
import { createLoginService, type LoginService } from "../domain/auth/login.ts";
import { createLoginThrottle } from "../domain/auth/login-throttle.ts";
import { createFreshMfaVerifier, createMfaActions, type MfaActions } from "../domain/auth/mfa-actions.ts";
import { createStepUpAttempts } from "../domain/auth/step-up-attempts.ts";
import type { FreshMfaVerifier } from "../domain/auth/authenticator.ts";
import { createRefreshReuseResponse } from "../domain/auth/refresh-reuse.ts";
import { createSessionActions, type SessionActions } from "../domain/auth/session-actions.ts";
import { createSecretBox } from "../domain/crypto/secret-box.ts";
import { deriveBackupCodeKey } from "../domain/mfa/backup-codes.ts";
import { createMfaService } from "../domain/mfa/mfa.ts";
import { createPasswordHasher } from "../domain/passwords/password-hasher.ts";
import { createRevocationCache, type RevocationCache } from "../domain/revocation/revocation-cache.ts";
import { createUserStateReader, type UserStateReader } from "../domain/revocation/user-state.ts";
import { createSessionService, type SessionService } from "../domain/sessions/sessions.ts";
import { createAccessTokenService, type AccessTokenService } from "../domain/tokens/access-tokens.ts";
import { createSigningKeySet, type SigningKeySet } from "../domain/tokens/signing-keys.ts";
import type { UsersStore } from "../domain/users/user-record.ts";
import { createUserNames, type UserNames } from "../domain/users/user-names.ts";
import { createUsersService, type UsersService } from "../domain/users/users.ts";
import { signingKeyFile, type Keyring } from "../keys/keyring.ts";
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
import type { PeriodicTask, Poller } from "./background.ts";

/** The JWT signing keys as configured: shared by the gateway and the CLI's rotate-signing-key. */
export function openSigningKeySet(deps: { store: Store; keyring: Keyring; config: Config }): Promise<SigningKeySet> {
  const { store, keyring, config } = deps;
  return createSigningKeySet({
    keys: keyring.signingKeys,
    keyFile: signingKeyFile(config.keyFile),
    store: createSigningKeysStore(store),
    accessTokenTtlMs: config.tokens.accessTtlMs,
    leewayMs: config.tokens.leewayMs,
    rotateAfterMs: config.tokens.signingKeyRotationMs,
  });
}

/** The identity services of one gateway, built from the store, the keyring and the configuration. */
export interface Identity {
  readonly usersStore: UsersStore;
  readonly users: UsersService;
  readonly signingKeys: SigningKeySet;
  readonly accessTokens: AccessTokenService;
  readonly revocations: RevocationCache;
  /** A user's current role and disabled flag: from the revocation cache, the database when not cached yet. */
  readonly userState: UserStateReader;
  /** Usernames by id, cached: the display names of audit actors. */
  readonly userNames: UserNames;
  readonly sessions: SessionService;
  readonly sessionActions: SessionActions;
  readonly login: LoginService;
  readonly mfa: MfaActions;
  readonly freshMfa: FreshMfaVerifier;
  readonly accountLocks: AccountLocks;
  /** Its background work: signing-key refresh, the session sweep, lifting expired locks. */
  readonly tasks: readonly PeriodicTask[];
  /** The revocation cache's poller. */
  readonly pollers: readonly Poller[];
}

// How often each instance reads revocations and user changes: well inside the 1-second promise.
const REVOCATION_POLL_MS = 250;
// Keys published (or retired) by other instances become known here within a second.
const SIGNING_KEY_REFRESH_MS = 1_000;
const SWEEP_INTERVAL_MS = 10 * 60_000;
const LOCK_RELEASE_MS = 30_000;

/**
 * Wires accounts, passwords, tokens, sessions, MFA, revocation and account locks, each from what is
 * built before it. Nothing runs yet: the gateway starts the pollers and tasks once everything is built.
 */
export async function createIdentity(deps: { store: Store; keyring: Keyring; config: Config; audit: AuditRecorder; logger: Logger }): Promise<Identity> {
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
  const userState = createUserStateReader({ revocations, users: usersStore });

  const sessionsStore = createSessionsStore(store);
  const refreshTokensStore = createRefreshTokensStore(store);
  const sessions = createSessionService({
    sessions: sessionsStore,
    refreshTokens: refreshTokensStore,
    refreshTtlMs: config.tokens.refreshTtlMs,
    onReuse: createRefreshReuseResponse({ revocations, audit, userNames }),
  });
  const mfaService = createMfaService({
    store: createMfaStore(store),
    secretBox: createSecretBox(keyring.encryptionKey),
    backupCodeKey: deriveBackupCodeKey(keyring.encryptionKey),
  });
  const mfa = createMfaActions({ mfa: mfaService, audit });
  const login = createLoginService({
    users,
    throttle,
    mfa: mfaService,
    sessions,
    accessTokens,
    audit,
    userName: (userId) => userNames.nameOf(userId),
    currentRole: async (userId) => {
      const state = await userState(userId);
      return state && !state.disabled ? state.role : undefined;
    },
  });
  const sessionActions = createSessionActions({ sessions, accessTokens, revocations, audit, userState });
  const accountLocks = createAccountLocks({
    users: usersStore,
    locks: createAccountLocksStore(store),
    revokeSessions: (userId, reason) => sessionActions.revokeUserSessions(userId, reason),
    noteUserChanged: (user) => revocations.noteUserChanged(user._id, { role: user.role, disabled: user.disabled }),
    audit,
  });

  return {
    usersStore,
    users,
    signingKeys,
    accessTokens,
    revocations,
    userState,
    userNames,
    sessions,
    sessionActions,
    login,
    mfa,
    freshMfa: createFreshMfaVerifier({ actions: mfa, users: usersStore, stepUp }),
    accountLocks,
    tasks: [
      { name: "signing key refresh", everyMs: SIGNING_KEY_REFRESH_MS, run: () => signingKeys.refresh() },
      // No TTL indexes on FerretDB: expired sessions and refresh tokens are swept here, and expiry is
      // checked on every read anyway, so a late sweep costs disk space, never correctness.
      {
        name: "sweeping expired sessions",
        everyMs: SWEEP_INTERVAL_MS,
        run: () => {
          const now = new Date();
          return Promise.all([sessionsStore.sweepExpired(now), refreshTokensStore.sweepExpired(now)]);
        },
      },
      { name: "releasing expired account locks", everyMs: LOCK_RELEASE_MS, run: () => accountLocks.releaseDue() },
    ],
    pollers: [revocations],
  };
}
