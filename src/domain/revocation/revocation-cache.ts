import type { ChangeFollower } from "../changes/change-feed.ts";
import { ROLE_ORDER, type Role } from "../permissions.ts";
import type { UserProfile, UserProfileFields } from "../users/user-profile.ts";

/** A user's authorisation-relevant state. */
export interface UserState {
  readonly role: Role;
  readonly disabled: boolean;
}

/** What changed: a session was revoked, or a user's role or disabled flag changed (or the user vanished). */
export type RevocationChange = { readonly kind: "session"; readonly sessionId: string } | { readonly kind: "user"; readonly userId: string };

/** A user as the poll reads it: `role` and `disabled` unchecked (the cache validates them), the profile fields as stored. */
export interface UserStateRow {
  readonly userId: string;
  readonly role: unknown;
  readonly disabled: unknown;
  readonly username?: unknown;
  readonly email?: unknown;
  readonly createdAt?: unknown;
  readonly updatedAt?: unknown;
  readonly lastLoginAt?: unknown;
}

/** The reads the cache makes; implemented by `src/store/revocation-store.ts`. */
export interface RevocationStore {
  /** Sessions revoked at or after `since`. */
  revokedSessionsSince(since: Date): Promise<Array<{ sessionId: string; revokedAt: Date }>>;
  /** Users whose `updatedAt` or `lastLoginAt` is at or after `since`, or every user when `since` is undefined. No secrets. */
  userStates(since?: Date): Promise<UserStateRow[]>;
  /** Whether MFA is on, for users whose factor changed at or after `since` (every factor when undefined). */
  mfaStates(since?: Date): Promise<Array<{ userId: string; enabled: boolean }>>;
}

/**
 * What every instance knows about revocations and users without asking the database on the hot path:
 * revoked sessions, each user's current role and disabled flag, and each user's profile (WhoAmI's
 * fields, MFA on or off). Changes made on any instance arrive through the change feed within one feed
 * period (plus the query time); the instance that makes a change notes it at once.
 */
export interface RevocationCache {
  isSessionRevoked(sessionId: string): boolean;
  /** Current role and disabled flag of a user, or undefined when unknown (treat as not allowed). */
  userState(userId: string): UserState | undefined;
  /** The user's profile, or undefined when the user or the profile fields are not known here. */
  userProfile(userId: string): UserProfile | undefined;
  /**
   * Subscribe to changes (used to end open streams within a second). A user change is reported whenever
   * the user's state differs from what the cache held, including a user the cache just learnt of or
   * forgot; a change of profile fields alone is not reported. Returns the unsubscribe function. A
   * listener that throws is reported through `onError`.
   */
  subscribe(listener: (change: RevocationChange) => void): () => void;
  /** Mark locally at once (the instance that revoked doesn't wait for the feed). */
  noteSessionRevoked(sessionId: string): void;
  /** A user's new state; with `profile`, the user's fields too (a user record at hand). */
  noteUserChanged(userId: string, state: UserState, profile?: UserProfileFields): void;
  /** MFA turned on or off for a user here. */
  noteMfa(userId: string, enabled: boolean): void;
  /**
   * A user read from the database on a miss. Taken only where the cache does not know the user yet (the
   * profile fields only where it lacks them): a change the feed applied while that read was in flight
   * is newer than the read and must not be undone by it.
   */
  learnUser(userId: string, state: UserState, profile?: UserProfileFields, mfaEnabled?: boolean): void;
  /** Reads what changed since the last read (a full reload when one is due). The change feed calls it. */
  pollNow(): Promise<void>;
  /** Loads revocations of the last `retentionMs`, every user's state and profile and MFA state. Rejects if the load fails. */
  start(): Promise<void>;
  /** The cache as a follower of the change feed: its topics, its refresh, its full-reload period. */
  readonly follower: ChangeFollower;
  /** When the last read that reached the database started (ms since the epoch); undefined before start. */
  lastSuccessfulPollAt(): number | undefined;
}

export interface RevocationCacheDeps {
  store: RevocationStore;
  /** How long a revoked session id is remembered: the access-token TTL plus leeway (its tokens are dead after). */
  retentionMs: number;
  /**
   * How far back each read reaches before the previous one, so that a change written with a clock a
   * little behind ours (or committed while we read) is not missed. Default 2 s.
   */
  overlapMs?: number;
  /**
   * How often the full state is reloaded whatever the marks say, which also catches users deleted
   * outright and changes whose mark was lost. Default 60 s.
   */
  fullReloadIntervalMs?: number;
  now?: () => number;
  /** Read failures and throwing listeners. Must not throw. Default: stderr. */
  onError?: (err: unknown) => void;
}

interface UserEntry {
  readonly state: UserState;
  readonly fields: UserProfileFields | undefined;
}

const ROLES: ReadonlySet<unknown> = new Set(ROLE_ORDER);

/** Creates the cache; call `start()` before serving, and let the change feed follow `follower`. */
export function createRevocationCache(deps: RevocationCacheDeps): RevocationCache {
  const now = deps.now ?? Date.now;
  const overlapMs = deps.overlapMs ?? 2_000;
  const fullReloadIntervalMs = deps.fullReloadIntervalMs ?? 60_000;
  const onError = deps.onError ?? ((err: unknown) => console.error("revocation cache:", err));

  /** Revoked session id → when it was revoked (ms), for retention. */
  const revoked = new Map<string, number>();
  const users = new Map<string, UserEntry>();
  const mfaOn = new Set<string>();
  const listeners = new Set<(change: RevocationChange) => void>();
  let lastPollStartedAt: number | undefined;
  let lastFullLoadAt = 0;

  const emit = (change: RevocationChange) => {
    for (const listener of [...listeners]) {
      try {
        listener(change);
      } catch (err) {
        safely(onError, err);
      }
    }
  };

  const addRevoked = (sessionId: string, at: number, notify: boolean) => {
    if (revoked.has(sessionId)) return;
    revoked.set(sessionId, at);
    if (notify) emit({ kind: "session", sessionId });
  };

  const setUser = (userId: string, state: UserState | undefined, fields: UserProfileFields | undefined, notify: boolean) => {
    const previous = users.get(userId);
    if (state) users.set(userId, { state: previous?.state.role === state.role && previous.state.disabled === state.disabled ? previous.state : state, fields: fields ?? previous?.fields });
    else users.delete(userId);
    if (previous?.state.role === state?.role && previous?.state.disabled === state?.disabled) return;
    if (notify) emit({ kind: "user", userId });
  };

  const load = async (full: boolean) => {
    const startedAt = now();
    const since = full || lastPollStartedAt === undefined ? undefined : new Date(lastPollStartedAt - overlapMs);
    const [sessions, userRows, mfaRows] = await Promise.all([
      deps.store.revokedSessionsSince(since ?? new Date(startedAt - deps.retentionMs)),
      deps.store.userStates(since),
      deps.store.mfaStates(since),
    ]);
    // The very first load fills an empty cache: nothing has changed for anyone listening.
    const notify = lastPollStartedAt !== undefined;
    for (const { sessionId, revokedAt } of sessions) addRevoked(sessionId, revokedAt.getTime(), notify);
    const seen = new Set<string>();
    for (const row of userRows) {
      seen.add(row.userId);
      // A role we don't know is no role: the user is treated as unknown, so not allowed.
      const state = ROLES.has(row.role) ? { role: row.role as Role, disabled: row.disabled !== false } : undefined;
      setUser(row.userId, state, profileFieldsOf(row), notify);
    }
    if (since === undefined) {
      for (const userId of [...users.keys()]) if (!seen.has(userId)) setUser(userId, undefined, undefined, notify);
      mfaOn.clear();
      lastFullLoadAt = startedAt;
    }
    for (const { userId, enabled } of mfaRows) {
      if (enabled) mfaOn.add(userId);
      else mfaOn.delete(userId);
    }
    // Tokens of sessions revoked before this are expired: their ids need no remembering.
    const horizon = now() - deps.retentionMs;
    for (const [sessionId, at] of revoked) if (at < horizon) revoked.delete(sessionId);
    lastPollStartedAt = startedAt;
  };

  const pollNow = () => load(now() - lastFullLoadAt >= fullReloadIntervalMs);

  return {
    isSessionRevoked: (sessionId) => revoked.has(sessionId),

    userState: (userId) => users.get(userId)?.state,

    userProfile(userId) {
      const entry = users.get(userId);
      if (!entry?.fields) return undefined;
      const { fields, state } = entry;
      return {
        userId,
        username: fields.username,
        email: fields.email,
        role: state.role,
        disabled: state.disabled,
        mfaEnabled: mfaOn.has(userId),
        createdAt: fields.createdAt,
        updatedAt: fields.updatedAt,
        lastLoginAt: fields.lastLoginAt,
      };
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    noteSessionRevoked: (sessionId) => addRevoked(sessionId, now(), true),

    noteUserChanged(userId, state, profile) {
      setUser(
        userId,
        ROLES.has(state.role) ? { role: state.role, disabled: state.disabled === true } : undefined,
        profile && profileFieldsOf({ userId, role: state.role, disabled: state.disabled, ...profile }),
        true,
      );
    },

    noteMfa(userId, enabled) {
      if (enabled) mfaOn.add(userId);
      else mfaOn.delete(userId);
    },

    learnUser(userId, state, profile, mfaEnabled) {
      const known = users.get(userId);
      const fields = profile && profileFieldsOf({ userId, role: state.role, disabled: state.disabled, ...profile });
      if (known) {
        if (!known.fields && fields) users.set(userId, { state: known.state, fields });
        return;
      }
      if (!ROLES.has(state.role)) return;
      setUser(userId, { role: state.role, disabled: state.disabled === true }, fields, true);
      if (mfaEnabled === true) mfaOn.add(userId);
      else if (mfaEnabled === false) mfaOn.delete(userId);
    },

    pollNow,

    async start() {
      if (lastPollStartedAt !== undefined) return;
      await load(true);
    },

    follower: { name: "revocations and users", topics: ["sessions", "users", "mfa"], refresh: pollNow, everyMs: fullReloadIntervalMs },

    lastSuccessfulPollAt: () => lastPollStartedAt,
  };
}

/** The profile fields of a row when they have the stored shape, else undefined (the profile is then read from the database). */
function profileFieldsOf(row: UserStateRow): UserProfileFields | undefined {
  const { username, email, createdAt, updatedAt, lastLoginAt } = row;
  if (typeof username !== "string" || !(createdAt instanceof Date) || !(updatedAt instanceof Date)) return undefined;
  return {
    username,
    email: typeof email === "string" ? email : undefined,
    createdAt,
    updatedAt,
    lastLoginAt: lastLoginAt instanceof Date ? lastLoginAt : undefined,
  };
}

function safely(onError: (err: unknown) => void, err: unknown): void {
  try {
    onError(err);
  } catch {
    // A broken error reporter must not stop the poller.
  }
}
