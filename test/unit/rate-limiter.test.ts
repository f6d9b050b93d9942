import { describe, expect, it } from "vitest";
import { createRateLimiter } from "../../src/access/rate-limiter.ts";

const limits = { default: 60, credential: 3, expensive: 6, admin: 6, infrastructure: 600 };

describe("rate limiter", () => {
  it("allows a burst up to the per-minute budget, then refuses with a retry hint", () => {
    let now = 0;
    const limiter = createRateLimiter(limits, { now: () => now });
    for (let i = 0; i < 3; i++) expect(limiter.take("credential", "ip:1.2.3.4").allowed).toBe(true);
    const refused = limiter.take("credential", "ip:1.2.3.4");
    expect(refused).toEqual({ allowed: false, retryAfterMs: 20_000 });
    now = 20_000;
    expect(limiter.take("credential", "ip:1.2.3.4").allowed).toBe(true);
    expect(limiter.take("credential", "ip:1.2.3.4").allowed).toBe(false);
  });

  it("peeks without taking, for budgets spent only on failure", () => {
    let now = 0;
    const limiter = createRateLimiter({ failed_authentication: 2 }, { now: () => now });
    for (let i = 0; i < 5; i++) expect(limiter.peek("failed_authentication", "ip:1.2.3.4").allowed).toBe(true);
    limiter.take("failed_authentication", "ip:1.2.3.4");
    limiter.take("failed_authentication", "ip:1.2.3.4");
    expect(limiter.peek("failed_authentication", "ip:1.2.3.4")).toEqual({ allowed: false, retryAfterMs: 30_000 });
    now = 30_000;
    expect(limiter.peek("failed_authentication", "ip:1.2.3.4").allowed).toBe(true);
  });

  it("keeps separate budgets per subject and per class", () => {
    const limiter = createRateLimiter(limits, { now: () => 0 });
    for (let i = 0; i < 3; i++) limiter.take("credential", "user:a");
    expect(limiter.take("credential", "user:a").allowed).toBe(false);
    expect(limiter.take("credential", "user:b").allowed).toBe(true);
    expect(limiter.take("default", "user:a").allowed).toBe(true);
  });

  it("bounds its memory, dropping idle subjects before busy ones", () => {
    let now = 0;
    const limiter = createRateLimiter(limits, { now: () => now, maxSubjects: 100 });
    for (let i = 0; i < 3; i++) limiter.take("credential", "user:busy");
    for (let i = 0; i < 1000; i++) limiter.take("default", `ip:${i}`);
    expect(limiter.size).toBeLessThanOrEqual(100);

    // Subjects idle long enough to refill are evicted first; a drained budget survives that.
    const fresh = createRateLimiter(limits, { now: () => now, maxSubjects: 100 });
    for (let i = 0; i < 99; i++) fresh.take("default", `ip:${i}`);
    now = 60_000;
    for (let i = 0; i < 3; i++) fresh.take("credential", "user:busy");
    now = 61_000; // the 99 idle subjects are full again; user:busy has refilled 0.05 of a request
    fresh.take("default", "ip:new"); // over capacity: eviction runs
    expect(fresh.size).toBeLessThanOrEqual(100);
    // Had user:busy been evicted, it would have come back with a full budget.
    expect(fresh.take("credential", "user:busy").allowed).toBe(false);
  });
});
