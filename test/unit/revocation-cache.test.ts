import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createRevocationCache, type RevocationCache, type RevocationCacheDeps, type RevocationChange, type RevocationStore } from "../../src/domain/revocation/revocation-cache.ts";
import { createSessionService } from "../../src/domain/sessions/sessions.ts";
import { createRefreshTokensStore } from "../../src/store/refresh-tokens-store.ts";
import { createRevocationStore } from "../../src/store/revocation-store.ts";
import { createSessionsStore } from "../../src/store/sessions-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

const RETENTION_MS = 15 * 60 * 1000 + 30 * 1000;
const WITHIN_ONE_SECOND = { timeout: 1000, interval: 10 };

describe("revocation cache", () => {
  const started: RevocationCache[] = [];
  afterEach(() => {
    for (const cache of started.splice(0)) cache.stop();
  });

  /** One instance's cache, started. */
  async function instance(overrides: Partial<RevocationCacheDeps> = {}): Promise<RevocationCache> {
    const cache = createRevocationCache({ store: createRevocationStore(database.store), retentionMs: RETENTION_MS, onError: () => undefined, ...overrides });
    await cache.start();
    started.push(cache);
    return cache;
  }

  const sessions = () => createSessionService({ sessions: createSessionsStore(database.store), refreshTokens: createRefreshTokensStore(database.store) });
  const users = () => database.store.db.collection("users");

  async function insertUser(role: string, disabled = false): Promise<string> {
    const id = randomUUID();
    await users().insertOne({ _id: id as never, username: id, usernameKey: id, role, disabled, passwordHash: "x", createdAt: new Date(), updatedAt: new Date() });
    return id;
  }

  const updateUser = (id: string, set: Record<string, unknown>) => users().updateOne({ _id: id as never }, { $set: { ...set, updatedAt: new Date() } });

  it("sees a session revoked on another instance within a second, and tells subscribers", async () => {
    const service = sessions();
    const { sessionId } = await service.open({ userId: "u-1", ip: "127.0.0.1", userAgent: "vitest" });
    const a = await instance();
    const b = await instance();
    const changes: RevocationChange[] = [];
    b.subscribe((change) => changes.push(change));
    expect(b.isSessionRevoked(sessionId)).toBe(false);

    // Instance A revokes and notes it locally; B only has the database.
    await service.revoke(sessionId, "logout");
    a.noteSessionRevoked(sessionId);
    expect(a.isSessionRevoked(sessionId)).toBe(true);
    await expect.poll(() => b.isSessionRevoked(sessionId), WITHIN_ONE_SECOND).toBe(true);
    expect(changes).toContainEqual({ kind: "session", sessionId });
    // Reported once, though the overlapping polls read it again.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(changes.filter((c) => c.kind === "session" && c.sessionId === sessionId)).toHaveLength(1);
  });

  it("loads recent revocations and every user's state at start", async () => {
    const service = sessions();
    const { sessionId } = await service.open({ userId: "u-2", ip: "127.0.0.1", userAgent: "vitest" });
    await service.revoke(sessionId, "logout");
    const admin = await insertUser("admin");
    const disabled = await insertUser("user", true);
    const strange = await insertUser("superuser");

    const cache = await instance({ pollIntervalMs: 60_000 });
    expect(cache.isSessionRevoked(sessionId)).toBe(true);
    expect(cache.userState(admin)).toEqual({ role: "admin", disabled: false });
    expect(cache.userState(disabled)).toEqual({ role: "user", disabled: true });
    // An unknown role is no role: the user is treated as unknown.
    expect(cache.userState(strange)).toBeUndefined();
    expect(cache.userState("nobody")).toBeUndefined();
    expect(cache.lastSuccessfulPollAt()).toBeTypeOf("number");
  });

  it("sees a user disabled or demoted on another instance within a second", async () => {
    const id = await insertUser("admin");
    const b = await instance();
    const changes: RevocationChange[] = [];
    b.subscribe((change) => changes.push(change));
    expect(b.userState(id)).toEqual({ role: "admin", disabled: false });

    await updateUser(id, { role: "user" });
    await expect.poll(() => b.userState(id), WITHIN_ONE_SECOND).toEqual({ role: "user", disabled: false });
    expect(changes).toEqual([{ kind: "user", userId: id }]);

    await updateUser(id, { disabled: true });
    await expect.poll(() => b.userState(id), WITHIN_ONE_SECOND).toEqual({ role: "user", disabled: true });
    expect(changes).toEqual([
      { kind: "user", userId: id },
      { kind: "user", userId: id },
    ]);

    // A user created on another instance appears too.
    const created = await insertUser("owner");
    await expect.poll(() => b.userState(created), WITHIN_ONE_SECOND).toEqual({ role: "owner", disabled: false });
  });

  it("applies local notes at once and stops telling a listener once it unsubscribes", async () => {
    const cache = await instance({ pollIntervalMs: 60_000 });
    const changes: RevocationChange[] = [];
    const unsubscribe = cache.subscribe((change) => changes.push(change));
    cache.noteSessionRevoked("s-local");
    cache.noteUserChanged("u-local", { role: "admin", disabled: false });
    cache.noteUserChanged("u-local", { role: "admin", disabled: false }); // no change, no event
    expect(cache.isSessionRevoked("s-local")).toBe(true);
    expect(cache.userState("u-local")).toEqual({ role: "admin", disabled: false });
    expect(changes).toEqual([
      { kind: "session", sessionId: "s-local" },
      { kind: "user", userId: "u-local" },
    ]);
    unsubscribe();
    cache.noteUserChanged("u-local", { role: "admin", disabled: true });
    expect(changes).toHaveLength(2);
    expect(cache.userState("u-local")).toEqual({ role: "admin", disabled: true });
  });

  it("forgets revoked sessions after the retention period", async () => {
    let clock = Date.now();
    const cache = await instance({ pollIntervalMs: 10, retentionMs: 60_000, now: () => clock });
    cache.noteSessionRevoked("s-old");
    clock += 30_000;
    cache.noteSessionRevoked("s-newer");
    clock += 30_001;
    await expect.poll(() => cache.isSessionRevoked("s-old"), WITHIN_ONE_SECOND).toBe(false);
    expect(cache.isSessionRevoked("s-newer")).toBe(true);

    // Revocations older than the retention are not loaded at start either.
    const service = sessions();
    const { sessionId } = await service.open({ userId: "u-3", ip: "127.0.0.1", userAgent: "vitest" });
    await createSessionsStore(database.store).revoke(sessionId, "old", new Date(Date.now() - RETENTION_MS - 60_000));
    const fresh = await instance({ pollIntervalMs: 60_000 });
    expect(fresh.isSessionRevoked(sessionId)).toBe(false);
  });

  it("keeps its last state when a poll fails, reports it, and catches up after", async () => {
    const real = createRevocationStore(database.store);
    let failing = false;
    const flaky: RevocationStore = {
      revokedSessionsSince: (since) => (failing ? Promise.reject(new Error("database down")) : real.revokedSessionsSince(since)),
      userStates: (since) => (failing ? Promise.reject(new Error("database down")) : real.userStates(since)),
    };
    const errors: unknown[] = [];
    const id = await insertUser("admin");
    const cache = await instance({ store: flaky, pollIntervalMs: 20, onError: (err) => errors.push(err) });

    failing = true;
    await expect.poll(() => errors.length, WITHIN_ONE_SECOND).toBeGreaterThan(0);
    const lastGood = cache.lastSuccessfulPollAt();
    expect(cache.userState(id)).toEqual({ role: "admin", disabled: false });
    await updateUser(id, { disabled: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(cache.lastSuccessfulPollAt()).toBe(lastGood);

    // The change made during the outage is read once the database answers again.
    failing = false;
    await expect.poll(() => cache.userState(id), WITHIN_ONE_SECOND).toEqual({ role: "admin", disabled: true });
    expect(cache.lastSuccessfulPollAt()).toBeGreaterThan(lastGood!);
  });

  it("forgets a user deleted outright at the next full reload", async () => {
    const id = await insertUser("user");
    const cache = await instance({ pollIntervalMs: 20, fullReloadIntervalMs: 100 });
    expect(cache.userState(id)).toBeDefined();
    await users().deleteOne({ _id: id as never });
    await expect.poll(() => cache.userState(id), WITHIN_ONE_SECOND).toBeUndefined();
  });

  it("reports a throwing listener without stopping the others", async () => {
    const errors: unknown[] = [];
    const cache = await instance({ pollIntervalMs: 60_000, onError: (err) => errors.push(err) });
    const seen: RevocationChange[] = [];
    cache.subscribe(() => {
      throw new Error("listener bug");
    });
    cache.subscribe((change) => seen.push(change));
    cache.noteSessionRevoked("s-x");
    expect(seen).toEqual([{ kind: "session", sessionId: "s-x" }]);
    expect(errors).toHaveLength(1);
  });
});
