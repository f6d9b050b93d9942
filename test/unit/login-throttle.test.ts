import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLoginThrottle, type LoginThrottle } from "../../src/domain/auth/login-throttle.ts";
import { DomainError } from "../../src/domain/errors.ts";
import { createLoginThrottleStore } from "../../src/store/login-throttle-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

/** A controllable clock, in ms since the epoch. */
function clock(start = Date.parse("2030-01-01T00:00:00Z")) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

function throttle(now: () => number): LoginThrottle {
  return createLoginThrottle({ store: createLoginThrottleStore(database.store), now });
}

/** A username key and a client address unique to one test (counters persist in the database). */
function subjects() {
  const n = () => Math.floor(Math.random() * 250) + 1;
  return { user: `user-${randomUUID().slice(0, 8)}`, ip: `10.${n()}.${n()}.${n()}` };
}

/** The retryAfterMs of the lock `check` reports, or undefined when it lets the attempt through. */
async function lockedFor(t: LoginThrottle, user: string, ip: string): Promise<number | undefined> {
  try {
    await t.check(user, ip);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ code: "resource_exhausted", reason: "locked" });
    return (err as DomainError).retryAfterMs;
  }
}

describe("login throttle", () => {
  it("locks a username after 5 failures, for twice as long after each further failure", async () => {
    const time = clock();
    const t = throttle(time.now);
    const { user, ip } = subjects();

    for (let i = 0; i < 4; i++) {
      await t.recordFailure(user, ip);
      expect(await lockedFor(t, user, ip)).toBeUndefined();
    }
    await t.recordFailure(user, ip);
    expect(await lockedFor(t, user, ip)).toBe(1000);

    const locks: number[] = [];
    for (let i = 0; i < 4; i++) {
      time.advance((await lockedFor(t, user, ip)) ?? 0);
      expect(await lockedFor(t, user, ip)).toBeUndefined();
      await t.recordFailure(user, ip);
      locks.push((await lockedFor(t, user, ip)) ?? 0);
    }
    expect(locks).toEqual([2000, 4000, 8000, 16_000]);

    // Another address trying the same username is locked out too: the lock is the username's.
    expect(await lockedFor(t, user, subjects().ip)).toBe(16_000);
  });

  it("caps the lock at 15 minutes", async () => {
    const time = clock();
    const t = throttle(time.now);
    const { user, ip } = subjects();
    let last = 0;
    for (let i = 0; i < 16; i++) {
      time.advance(last);
      await t.recordFailure(user, ip);
      last = (await lockedFor(t, user, ip)) ?? 0;
    }
    expect(last).toBe(15 * 60_000);
  });

  it("locks a client address after 20 failures across usernames", async () => {
    const time = clock();
    const t = throttle(time.now);
    const { ip } = subjects();
    for (let i = 0; i < 19; i++) await t.recordFailure(`spray-${i}-${randomUUID()}`, ip);
    expect(await lockedFor(t, "someone-new", ip)).toBeUndefined();
    await t.recordFailure(`spray-last-${randomUUID()}`, ip);
    expect(await lockedFor(t, "someone-new", ip)).toBe(1000);
    expect(await lockedFor(t, "someone-new", subjects().ip)).toBeUndefined();
  });

  it("counts IPv6 addresses per /64 and IPv4-mapped addresses as IPv4", async () => {
    const time = clock();
    const t = createLoginThrottle({ store: createLoginThrottleStore(database.store), now: time.now, policy: { ipThreshold: 2 } });
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:1`;
    await t.recordFailure(randomUUID(), `${prefix}::1`);
    await t.recordFailure(randomUUID(), `${prefix}:ffff:2:3:4`);
    expect(await lockedFor(t, "x", `${prefix}:0:0:0:99`)).toBe(1000);

    const { ip } = subjects();
    await t.recordFailure(randomUUID(), `::ffff:${ip}`);
    await t.recordFailure(randomUUID(), ip);
    expect(await lockedFor(t, "x", ip)).toBe(1000);
  });

  it("resets the username counter on success but keeps the address's", async () => {
    const time = clock();
    const t = createLoginThrottle({ store: createLoginThrottleStore(database.store), now: time.now, policy: { ipThreshold: 6 } });
    const { user, ip } = subjects();
    for (let i = 0; i < 4; i++) await t.recordFailure(user, ip);
    await t.recordSuccess(user, ip);
    for (let i = 0; i < 4; i++) await t.recordFailure(user, ip);
    // The username has 4 since the success (not locked); the address has 8 (locked).
    expect(await lockedFor(t, user, subjects().ip)).toBeUndefined();
    expect(await lockedFor(t, "other", ip)).toBe(4000);
  });

  it("ends the run on a success checked with failures, and writes nothing for one checked clean", async () => {
    const time = clock();
    const store = createLoginThrottleStore(database.store);
    let clears = 0;
    const counted = {
      ...store,
      clear: (key: string) => {
        clears++;
        return store.clear(key);
      },
    };
    const t = createLoginThrottle({ store: counted, now: time.now });
    const { user, ip } = subjects();

    const clean = await t.check(user, ip);
    expect(clean).toEqual({ usernameHasFailures: false });
    await t.recordSuccess(user, ip, clean);
    expect(clears).toBe(0);

    for (let i = 0; i < 4; i++) await t.recordFailure(user, ip);
    const dirty = await t.check(user, ip);
    expect(dirty).toEqual({ usernameHasFailures: true });
    await t.recordSuccess(user, ip, dirty);
    expect(clears).toBe(1);
    // The run ended: four more failures do not lock (they would have made nine).
    for (let i = 0; i < 4; i++) await t.recordFailure(user, ip);
    expect(await lockedFor(t, user, subjects().ip)).toBeUndefined();
  });

  it("treats unknown usernames exactly like known ones", async () => {
    const time = clock();
    const t = throttle(time.now);
    const ip = subjects().ip;
    const made = await lockedAfterFive(t, `nobody-${randomUUID()}`, ip);
    const real = await lockedAfterFive(t, `alice-${randomUUID()}`, subjects().ip);
    expect(made).toBe(real);
  });

  async function lockedAfterFive(t: LoginThrottle, user: string, ip: string): Promise<number | undefined> {
    for (let i = 0; i < 5; i++) await t.recordFailure(user, ip);
    return lockedFor(t, user, ip);
  }

  it("shares counters between instances on the same database", async () => {
    const time = clock();
    const first = throttle(time.now);
    const second = throttle(time.now);
    const { user, ip } = subjects();
    await Promise.all([first.recordFailure(user, ip), second.recordFailure(user, ip), first.recordFailure(user, ip)]);
    await second.recordFailure(user, ip);
    expect(await lockedFor(first, user, ip)).toBeUndefined();
    await first.recordFailure(user, ip);
    expect(await lockedFor(second, user, ip)).toBe(1000);

    await second.recordSuccess(user, ip);
    expect(await lockedFor(first, user, ip)).toBeUndefined();
  });

  it("starts a counter idle for more than an hour from zero", async () => {
    const time = clock();
    const t = throttle(time.now);
    const { user, ip } = subjects();
    for (let i = 0; i < 4; i++) await t.recordFailure(user, ip);

    time.advance(60 * 60_000 + 1);
    await t.recordFailure(user, ip); // would be the 5th; after an hour it is the 1st
    expect(await lockedFor(t, user, ip)).toBeUndefined();
    for (let i = 0; i < 3; i++) await t.recordFailure(user, ip);
    expect(await lockedFor(t, user, ip)).toBeUndefined();
    await t.recordFailure(user, ip);
    expect(await lockedFor(t, user, ip)).toBe(1000);
  });

  it("counts every failure of a parallel burst, spread over instances", async () => {
    const time = clock();
    const instances = [throttle(time.now), throttle(time.now), throttle(time.now)];
    const { user, ip } = subjects();
    await Promise.all(Array.from({ length: 30 }, (_, i) => instances[i % 3]?.recordFailure(user, ip)));
    // 30 failures: the username is far past its cap, the address (threshold 20) at 2^10 s → capped too.
    expect(await lockedFor(instances[0]!, user, subjects().ip)).toBe(15 * 60_000);
    expect(await lockedFor(instances[1]!, "someone-else", ip)).toBe(15 * 60_000);
  });

  it("keeps only the failures that can still change a lock", async () => {
    const time = clock();
    const t = throttle(time.now);
    const { user, ip } = subjects();
    for (let i = 0; i < 25; i++) {
      time.advance(1);
      await t.recordFailure(user, ip);
    }
    // 5 + 11 failures reach the 15-minute cap (2^10 s > 15 min): older ones are dropped.
    expect(await database.store.db.collection("login_throttle").countDocuments({ key: `user:${user}` })).toBe(16);
    expect(await lockedFor(t, user, ip)).toBe(15 * 60_000);
  });

  it("sweeps failures too old to matter to any run", async () => {
    const time = clock();
    const t = throttle(time.now);
    const old = subjects();
    await t.recordFailure(old.user, old.ip);
    time.advance(7 * 24 * 60 * 60_000);
    await throttle(time.now).recordFailure(subjects().user, subjects().ip); // a fresh instance sweeps at once
    expect(await database.store.db.collection("login_throttle").countDocuments({ key: `user:${old.user}` })).toBe(0);
  });

  it("forgives even a capped counter after an hour without failures", async () => {
    const time = clock();
    const t = throttle(time.now);
    const { user, ip } = subjects();
    let last = 0;
    for (let i = 0; i < 16; i++) {
      time.advance(last);
      await t.recordFailure(user, ip);
      last = (await lockedFor(t, user, ip)) ?? 0;
    }
    expect(last).toBe(15 * 60_000);

    time.advance(60 * 60_000 + 1);
    expect(await lockedFor(t, user, ip)).toBeUndefined();
    for (let i = 0; i < 4; i++) await t.recordFailure(user, ip);
    expect(await lockedFor(t, user, ip)).toBeUndefined();
    await t.recordFailure(user, ip);
    expect(await lockedFor(t, user, ip)).toBe(1000);
  });
});
