import { ROLE_ORDER, type Role } from "../permissions.ts";

/** A user's authorisation-relevant state. */
export interface UserState {
  readonly role: Role;
  readonly disabled: boolean;
}

/** What changed: a session was revoked, or a user's role or disabled flag changed (or the user vanished). */
export type RevocationChange = { readonly kind: "session"; readonly sessionId: string } | { readonly kind: "user"; readonly userId: string };

/** The reads the cache polls; implemented by `src/store/revocation-store.ts`. */
export interface RevocationStore {
  /** Sessions revoked at or after `since`. */
  revokedSessionsSince(since: Date): Promise<Array<{ sessionId: string; revokedAt: Date }>>;
  /**
   * Users whose `updatedAt` is at or after `since`, or every user when `since` is undefined. `role` and
   * `disabled` are as stored (unchecked): the cache validates them.
   */
  userStates(since?: Date): Promise<Array<{ userId: string; role: unknown; disabled: unknown }>>;
}

/**
 * What every instance knows about revocations without asking the database on the hot path: revoked
 * sessions, and each user's current role and disabled flag. Changes made on any instance arrive by
 * polling within one poll interval (plus the query time); the instance that makes a change notes it at once.
 */
export interface RevocationCache {
  isSessionRevoked(sessionId: string): boolean;
  /** Current role and disabled flag of a user, or undefined when unknown (treat as not allowed). */
  userState(userId: string): UserState | undefined;
  /**
   * Subscribe to changes (used to end open streams within a second). A user change is reported whenever
   * the user's state differs from what the cache held, including a user the cache just learnt of or
   * forgot. Returns the unsubscribe function. A listener that throws is reported through `onError`.
   */
  subscribe(listener: (change: RevocationChange) => void): () => void;
  /** Mark locally at once (the instance that revoked doesn't wait for its own poll). */
  noteSessionRevoked(sessionId: string): void;
  noteUserChanged(userId: string, state: UserState): void;
  /** Polls at once (after a mass revocation made here, whose sessions were not noted one by one). */
  pollNow(): Promise<void>;
  /** Loads revocations of the last `retentionMs` and every user's state, then polls. Rejects if the load fails. */
  start(): Promise<void>;
  /** Stops polling; the cache keeps answering from its last state. */
  stop(): void;
  /**
   * When the last poll that reached the database started (ms since the epoch); undefined before start.
   * Everything changed more than a poll interval before it is reflected. The caller may fail closed when
   * it falls too far behind.
   */
  lastSuccessfulPollAt(): number | undefined;
}

export interface RevocationCacheDeps {
  store: RevocationStore;
  /** Default 250 ms. */
  pollIntervalMs?: number;
  /** How long a revoked session id is remembered: the access-token TTL plus leeway (its tokens are dead after). */
  retentionMs: number;
  /**
   * How far back each poll reaches before the previous one, so that a change written with a clock a
   * little behind ours (or committed while we polled) is not missed. Default 2 s.
   */
  overlapMs?: number;
  /**
   * How often the full state is reloaded, which also catches users deleted outright and changes missed by
   * clocks skewed beyond the overlap. Default 60 s.
   */
  fullReloadIntervalMs?: number;
  now?: () => number;
  /** Poll failures and throwing listeners. Must not throw. Default: stderr. */
  onError?: (err: unknown) => void;
}

const ROLES: ReadonlySet<unknown> = new Set(ROLE_ORDER);

/** Creates the cache; call `start()` before serving. */
export function createRevocationCache(deps: RevocationCacheDeps): RevocationCache {
  const now = deps.now ?? Date.now;
  const pollIntervalMs = deps.pollIntervalMs ?? 250;
  const overlapMs = deps.overlapMs ?? 2_000;
  const fullReloadIntervalMs = deps.fullReloadIntervalMs ?? 60_000;
  const onError = deps.onError ?? ((err: unknown) => console.error("revocation cache:", err));

  /** Revoked session id → when it was revoked (ms), for retention. */
  const revoked = new Map<string, number>();
  const users = new Map<string, UserState>();
  const listeners = new Set<(change: RevocationChange) => void>();
  let lastPollStartedAt: number | undefined;
  let lastFullLoadAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  // Bumped by stop(): a poll still in flight when stopped (and perhaps restarted) must not schedule another.
  let generation = 0;

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

  const setUser = (userId: string, state: UserState | undefined, notify: boolean) => {
    const previous = users.get(userId);
    if (previous?.role === state?.role && previous?.disabled === state?.disabled) return;
    if (state) users.set(userId, state);
    else users.delete(userId);
    if (notify) emit({ kind: "user", userId });
  };

  const load = async (full: boolean) => {
    const startedAt = now();
    const since = full || lastPollStartedAt === undefined ? undefined : lastPollStartedAt - overlapMs;
    const [sessions, userDocs] = await Promise.all([
      deps.store.revokedSessionsSince(new Date(since ?? startedAt - deps.retentionMs)),
      deps.store.userStates(since === undefined ? undefined : new Date(since)),
    ]);
    // The very first load fills an empty cache: nothing has changed for anyone listening.
    const notify = lastPollStartedAt !== undefined;
    for (const { sessionId, revokedAt } of sessions) addRevoked(sessionId, revokedAt.getTime(), notify);
    const seen = new Set<string>();
    for (const doc of userDocs) {
      seen.add(doc.userId);
      // A role we don't know is no role: the user is treated as unknown, so not allowed.
      const state = ROLES.has(doc.role) ? { role: doc.role as Role, disabled: doc.disabled !== false } : undefined;
      setUser(doc.userId, state, notify);
    }
    if (since === undefined) {
      for (const userId of [...users.keys()]) if (!seen.has(userId)) setUser(userId, undefined, notify);
      lastFullLoadAt = startedAt;
    }
    // Tokens of sessions revoked before this are expired: their ids need no remembering.
    const horizon = now() - deps.retentionMs;
    for (const [sessionId, at] of revoked) if (at < horizon) revoked.delete(sessionId);
    lastPollStartedAt = startedAt;
  };

  const schedule = (ownGeneration: number) => {
    if (!running || ownGeneration !== generation) return;
    timer = setTimeout(async () => {
      try {
        await load(now() - lastFullLoadAt >= fullReloadIntervalMs);
      } catch (err) {
        // Keep answering from the last state; lastSuccessfulPollAt() tells the caller how stale it is.
        safely(onError, err);
      }
      schedule(ownGeneration);
    }, pollIntervalMs);
    // Polling alone must not keep the process alive.
    timer.unref();
  };

  return {
    isSessionRevoked: (sessionId) => revoked.has(sessionId),

    userState: (userId) => users.get(userId),

    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    noteSessionRevoked: (sessionId) => addRevoked(sessionId, now(), true),

    noteUserChanged(userId, state) {
      setUser(userId, ROLES.has(state.role) ? { role: state.role, disabled: state.disabled === true } : undefined, true);
    },

    pollNow: () => load(false),

    async start() {
      if (running) return;
      await load(true);
      running = true;
      schedule(generation);
    },

    stop() {
      running = false;
      generation += 1;
      clearTimeout(timer);
      timer = undefined;
    },

    lastSuccessfulPollAt: () => lastPollStartedAt,
  };
}

function safely(onError: (err: unknown) => void, err: unknown): void {
  try {
    onError(err);
  } catch {
    // A broken error reporter must not stop the poller.
  }
}
