import { createHash } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { DomainError } from "../errors.ts";

/** How failed sign-ins slow down further attempts. */
export interface ThrottlePolicy {
  /** Consecutive failures for one username before it locks. Default 5. */
  userThreshold: number;
  /** Failures from one client address before it locks (higher: NAT and offices share addresses). Default 20. */
  ipThreshold: number;
  /** The first lock; each further failure doubles it. Default 1 s. */
  baseLockMs: number;
  /** Longest lock. Default 15 minutes. */
  maxLockMs: number;
  /** A run of failures ends when a gap between two of them (or since the last) exceeds this. Default 1 hour. */
  resetAfterMs: number;
}

export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = Object.freeze({
  userThreshold: 5,
  ipThreshold: 20,
  baseLockMs: 1000,
  maxLockMs: 15 * 60_000,
  resetAfterMs: 60 * 60_000,
});

/**
 * Where failures are kept, shared by every gateway instance; implemented by
 * `src/store/login-throttle-store.ts`. Keys are `user:<usernameKey>` or `ip:<address>`.
 *
 * Failures are separate inserted records, not a counter: FerretDB 1.x applies concurrent updates of
 * one document as unserialised read-modify-writes (50 parallel `$inc` leave 5), so a burst of parallel
 * guesses would count as one. Inserts never lose each other, on FerretDB or MongoDB.
 */
export interface LoginThrottleStore {
  /** The times of `key`'s newest `limit` failures, newest first. */
  recentFailures(key: string, limit: number): Promise<Date[]>;
  addFailure(key: string, at: Date): Promise<void>;
  /** Forgets all but `key`'s newest `keep` failures (older ones can no longer change its lock). */
  trim(key: string, keep: number): Promise<void>;
  /** Forgets all of `key`'s failures. */
  clear(key: string): Promise<void>;
  /** Forgets every failure before `before`, whatever its key. */
  deleteBefore(before: Date): Promise<void>;
}

/**
 * Slows password guessing, per username and per client address, across all instances. The caller
 * runs `check` before verifying a password and `recordFailure` / `recordSuccess` after.
 *
 * A username's failures form a run until it succeeds or stays quiet for an hour. From the 5th failure of
 * a run it is locked for 1 s after its last failure, then 2 s after the 6th, 4 s after the 7th… up to
 * 15 minutes (attempts while locked are refused before any password check, so they do not count).
 * Addresses lock the same way from their 20th failure. Unknown usernames count exactly like known
 * ones, so the lock reveals nothing about which exist.
 */
export interface LoginThrottle {
  /**
   * Throws DomainError("resource_exhausted", …, { reason: "locked", retryAfterMs }) while either key is
   * locked; otherwise says whether the username has failures on record.
   */
  check(usernameKey: string, ip: string): Promise<ThrottleCheck>;
  recordFailure(usernameKey: string, ip: string): Promise<void>;
  /**
   * Ends the username's run; the address's continues (one success must not launder a spraying address).
   * Given the check made before this attempt, and it saw no failures, there is nothing to forget and the
   * database is not touched (a failure from a parallel attempt in between then stays in the run: stricter).
   */
  recordSuccess(usernameKey: string, ip: string, checked?: ThrottleCheck): Promise<void>;
}

export interface ThrottleCheck {
  readonly usernameHasFailures: boolean;
}

// Sweeping everyone's old failures is one indexed delete; once a minute per instance is plenty.
const SWEEP_INTERVAL_MS = 60_000;

export function createLoginThrottle(deps: { store: LoginThrottleStore; now?: () => number; policy?: Partial<ThrottlePolicy> }): LoginThrottle {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  const policy: ThrottlePolicy = { ...DEFAULT_THROTTLE_POLICY, ...deps.policy };

  // Past this many failures in a run the lock is at its cap, so older ones need not be read or kept.
  const saturation = (threshold: number) => threshold + Math.max(0, Math.ceil(Math.log2(policy.maxLockMs / policy.baseLockMs))) + 1;
  const user = { threshold: policy.userThreshold, keep: saturation(policy.userThreshold) };
  const ip = { threshold: policy.ipThreshold, keep: saturation(policy.ipThreshold) };
  // The newest `keep` failures of a live run span at most `keep` gaps of resetAfterMs: anything older
  // than that belongs to no run that still matters.
  const horizonMs = Math.max(user.keep, ip.keep) * policy.resetAfterMs;
  let lastSweep = Number.NEGATIVE_INFINITY;

  /** How long `key` stays locked from `at`, in ms (0: not locked), and whether it has any failures. */
  async function remainingLock(key: string, limits: { threshold: number; keep: number }, at: number): Promise<{ lockMs: number; failures: number }> {
    const times = await store.recentFailures(key, limits.keep);
    return { lockMs: lockFrom(times, limits, at), failures: times.length };
  }

  function lockFrom(times: Date[], limits: { threshold: number; keep: number }, at: number): number {
    let run = 0;
    let later = at;
    for (const time of times) {
      if (later - time.getTime() > policy.resetAfterMs) break;
      run += 1;
      later = time.getTime();
    }
    const last = times[0];
    if (run < limits.threshold || last === undefined) return 0;
    const lockMs = Math.min(policy.baseLockMs * 2 ** Math.min(run - limits.threshold, 40), policy.maxLockMs);
    return Math.max(0, last.getTime() + lockMs - at);
  }

  async function fail(key: string, keep: number, at: number): Promise<void> {
    await store.addFailure(key, new Date(at));
    await store.trim(key, keep);
  }

  return {
    async check(usernameKey, address) {
      const at = now();
      const [forUser, forIp] = await Promise.all([remainingLock(userKey(usernameKey), user, at), remainingLock(ipKey(address), ip, at)]);
      const retryAfterMs = Math.max(forUser.lockMs, forIp.lockMs);
      if (retryAfterMs > 0) {
        throw new DomainError("resource_exhausted", "too many failed sign-in attempts; try again later", { reason: "locked", retryAfterMs: Math.ceil(retryAfterMs) });
      }
      return { usernameHasFailures: forUser.failures > 0 };
    },

    async recordFailure(usernameKey, address) {
      const at = now();
      await Promise.all([fail(userKey(usernameKey), user.keep, at), fail(ipKey(address), ip.keep, at)]);
      if (at - lastSweep >= SWEEP_INTERVAL_MS) {
        lastSweep = at;
        await store.deleteBefore(new Date(at - horizonMs));
      }
    },

    async recordSuccess(usernameKey, _address, checked) {
      if (checked && !checked.usernameHasFailures) return;
      await store.clear(userKey(usernameKey));
    },
  };
}

/** `user:<key>`; keys too long for a sensible index entry are hashed (they cannot be valid usernames anyway). */
function userKey(usernameKey: string): string {
  const key = String(usernameKey);
  return key.length <= 128 ? `user:${key}` : `user:#${createHash("sha256").update(key).digest("hex")}`;
}

/**
 * `ip:<address>`. IPv4-mapped IPv6 is its IPv4 address; other IPv6 addresses count per /64, since one
 * subscriber usually holds a whole /64 and could otherwise rotate through it. Every per-address budget
 * (this lock, the failed-authentication budget) groups addresses this way.
 */
export function ipKey(ip: string): string {
  const address = String(ip).trim().toLowerCase().replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1];
  if (mapped && isIPv4(mapped)) return `ip:${mapped}`;
  if (isIPv4(address)) return `ip:${address}`;
  if (isIPv6(address)) return `ip:${ipv6Prefix64(address)}::/64`;
  return "ip:unknown";
}

function ipv6Prefix64(address: string): string {
  const [head = "", tail] = address.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  // An embedded IPv4 tail (x:x::1.2.3.4) only affects the last 32 bits, below the /64.
  const width = tailGroups.some((g) => g.includes(".")) ? 7 : 8;
  const zeros = Array<string>(Math.max(0, width - headGroups.length - tailGroups.length)).fill("0");
  const groups = tail === undefined ? headGroups : [...headGroups, ...zeros, ...tailGroups];
  return groups
    .slice(0, 4)
    .map((g) => (g.includes(".") ? "0" : Number.parseInt(g, 16).toString(16)))
    .join(":");
}
