/**
 * What each writer marks when it changes something other instances hold in memory. Every store write
 * that one of the caches follows sets its topic's mark to a fresh random value after the write, so a
 * reader that sees a mark it has not seen knows some change is waiting, and one that sees the marks it
 * saw last knows that nothing it follows changed before it looked.
 */
export const CHANGE_TOPICS = ["users", "sessions", "mfa", "api_keys", "signing_keys", "provider_credentials"] as const;
export type ChangeTopic = (typeof CHANGE_TOPICS)[number];

/** The marks, read in one query; implemented by `src/store/change-marks-store.ts`. */
export interface ChangeMarksStore {
  /** Every topic's current mark (a topic never written has none). */
  read(): Promise<ReadonlyMap<string, string>>;
}

/** A cache kept fresh by the feed. */
export interface ChangeFollower {
  /** Names the follower in the error report of a failed refresh. */
  readonly name: string;
  readonly topics: readonly ChangeTopic[];
  /** Reads what changed and applies it. Runs once after start, then whenever a topic's mark moves. */
  refresh(): Promise<void>;
  /**
   * Refresh at least this often even when no mark moved: the safety net for a change whose mark was
   * lost (a writer that died between its write and its mark, or one that predates the marks), and the
   * clock for work a follower does on a schedule (the signing keys' rotation check).
   */
  readonly everyMs?: number;
}

/**
 * One timer for every cache that follows the database: each period it reads the marks (one small query,
 * whatever the size of the collections behind them) and refreshes only the followers whose topics
 * moved. With nothing changing, an instance costs the database one read of a few documents per period
 * instead of a scan of every followed collection.
 */
export interface ChangeFeed {
  /** Registers a follower; before `start`. */
  follow(follower: ChangeFollower): void;
  /** Reads the marks now and refreshes the followers whose topics moved (a change made here, a test). */
  pollNow(): Promise<void>;
  start(): void;
  stop(): void;
  /** When the marks were last read successfully (ms since the epoch); undefined before the first read. */
  lastCheckedAt(): number | undefined;
}

interface FollowerState {
  readonly follower: ChangeFollower;
  /** The marks of its topics as read before its last successful refresh; empty before the first. */
  seen: Map<string, string | undefined>;
  lastRefreshAt: number;
  ran: boolean;
}

/** Creates the feed; `intervalMs` defaults to 250 ms, well inside the one-second propagation promise. */
export function createChangeFeed(deps: { marks: ChangeMarksStore; intervalMs?: number; now?: () => number; onError?: (error: unknown, follower?: string) => void }): ChangeFeed {
  const intervalMs = deps.intervalMs ?? 250;
  const now = deps.now ?? Date.now;
  const onError = deps.onError ?? ((error: unknown) => console.error("change feed:", error));
  const followers: FollowerState[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let checkedAt: number | undefined;
  let inFlight: Promise<void> | undefined;

  const moved = (state: FollowerState, marks: ReadonlyMap<string, string>) => !state.ran || state.follower.topics.some((topic) => marks.get(topic) !== state.seen.get(topic));

  const poll = async () => {
    const startedAt = now();
    const marks = await deps.marks.read();
    checkedAt = startedAt;
    await Promise.all(
      followers.map(async (state) => {
        const due = state.follower.everyMs !== undefined && startedAt - state.lastRefreshAt >= state.follower.everyMs;
        if (!due && !moved(state, marks)) return;
        try {
          await state.follower.refresh();
          // Only now: a refresh that failed is retried on the next period, the marks still unseen.
          state.seen = new Map(state.follower.topics.map((topic) => [topic, marks.get(topic)]));
          state.lastRefreshAt = startedAt;
          state.ran = true;
        } catch (error) {
          safely(onError, error, state.follower.name);
        }
      }),
    );
  };

  // Polls never overlap: a caller of pollNow() while one runs waits for it, then polls again.
  const pollOnce = (): Promise<void> => {
    const previous = inFlight ?? Promise.resolve();
    const next = previous.then(poll, poll).finally(() => {
      if (inFlight === next) inFlight = undefined;
    });
    inFlight = next;
    return next;
  };

  const schedule = () => {
    if (!running) return;
    timer = setTimeout(() => {
      pollOnce()
        .catch((error: unknown) => safely(onError, error))
        .finally(schedule);
    }, intervalMs);
    // The feed alone must not keep the process alive.
    timer.unref();
  };

  return {
    follow(follower) {
      followers.push({ follower, seen: new Map(), lastRefreshAt: now(), ran: false });
    },
    pollNow: pollOnce,
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
    },
    lastCheckedAt: () => checkedAt,
  };
}

function safely(onError: (error: unknown, follower?: string) => void, error: unknown, follower?: string): void {
  try {
    onError(error, follower);
  } catch {
    // a broken error reporter must not stop the feed
  }
}
