import { randomUUID } from "node:crypto";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { createSessionService, hashRefreshToken, type SessionRecord, type SessionService } from "../../src/domain/sessions/sessions.ts";
import { createRefreshTokensStore, type MongoRefreshTokensStore } from "../../src/store/refresh-tokens-store.ts";
import { createSessionsStore, type MongoSessionsStore } from "../../src/store/sessions-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

const DAY_MS = 24 * 60 * 60 * 1000;
const client = { ip: "203.0.113.7", userAgent: "vitest" };

describe("sessions and refresh tokens", () => {
  let clock: number;
  let sessionsStore: MongoSessionsStore;
  let tokensStore: MongoRefreshTokensStore;
  let reused: SessionRecord[];
  let service: SessionService;

  beforeEach(() => {
    clock = Date.now();
    sessionsStore = createSessionsStore(database.store);
    tokensStore = createRefreshTokensStore(database.store);
    reused = [];
    service = createSessionService({ sessions: sessionsStore, refreshTokens: tokensStore, now: () => clock, onReuse: (s) => reused.push(s) });
  });

  const user = () => `user-${randomUUID()}`;
  const open = (userId: string) => service.open({ userId, ...client });

  async function expectRefused(promise: Promise<unknown>, reason?: string): Promise<DomainError> {
    const error = await promise.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: "unauthenticated", reason });
    return error as DomainError;
  }

  it("opens a session with a 256-bit rt_ token, valid for 7 days", async () => {
    const userId = user();
    const opened = await open(userId);
    expect(opened.refreshToken).toMatch(/^rt_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(opened.refreshToken.slice(3), "base64url")).toHaveLength(32);
    expect(opened.refreshExpiresAt.getTime()).toBe(clock + 7 * DAY_MS);
    expect(await service.get(opened.sessionId)).toMatchObject({ id: opened.sessionId, userId, ...client, expiresAt: opened.refreshExpiresAt });
    expect(await service.findByRefreshToken(opened.refreshToken)).toMatchObject({ id: opened.sessionId });
  });

  it("rotates; replaying a used token revokes the whole session, the successor included", async () => {
    const userId = user();
    const opened = await open(userId);
    clock += 60_000;
    const rotated = await service.rotate(opened.refreshToken, { ip: "198.51.100.1", userAgent: "new-agent" });
    expect(rotated).toMatchObject({ sessionId: opened.sessionId, userId });
    expect(rotated.refreshToken).not.toBe(opened.refreshToken);
    expect(rotated.refreshExpiresAt.getTime()).toBe(clock + 7 * DAY_MS);
    expect(await service.get(opened.sessionId)).toMatchObject({ lastUsedAt: new Date(clock), expiresAt: rotated.refreshExpiresAt, ip: "198.51.100.1", userAgent: "new-agent" });

    // The successor works, once.
    const third = await service.rotate(rotated.refreshToken, client);
    expect(third.sessionId).toBe(opened.sessionId);

    // The first token again: someone else has it.
    const error = await expectRefused(service.rotate(opened.refreshToken, client), "credential_revoked");
    expect(error.message).not.toContain(opened.refreshToken);
    expect(reused).toHaveLength(1);
    expect(reused[0]).toMatchObject({ id: opened.sessionId, userId, revokeReason: "refresh_token_reuse" });
    expect((await service.get(opened.sessionId))?.revokedAt).toBeInstanceOf(Date);
    await expectRefused(service.rotate(third.refreshToken, client));
    expect(await service.listForUser(userId)).toEqual([]);
  });

  it("lets only one of two concurrent rotations of one token claim it; the other is a replay", async () => {
    const opened = await open(user());
    const results = await Promise.allSettled([service.rotate(opened.refreshToken, client), service.rotate(opened.refreshToken, client)]);
    // One claimed the token, the other found it used: a duplicated token is read as a stolen one, so the
    // session is revoked — and the claimant either fails too (the revocation won the race) or gets a
    // successor that is already dead.
    const replays = results.filter((r) => r.status === "rejected" && (r.reason as DomainError).reason === "credential_revoked");
    expect(replays).toHaveLength(1);
    expect(reused).toHaveLength(1);
    expect((await service.get(opened.sessionId))?.revokedAt).toBeInstanceOf(Date);
    for (const r of results) if (r.status === "fulfilled") await expectRefused(service.rotate(r.value.refreshToken, client));
  });

  it("never loses a revocation to a rotation running at the same moment", async () => {
    for (let i = 0; i < 10; i++) {
      const opened = await open(user());
      const [revoked] = await Promise.all([service.revoke(opened.sessionId, "logout"), service.rotate(opened.refreshToken, client).catch(() => undefined)]);
      expect(revoked).toBe(true);
      expect((await service.get(opened.sessionId))?.revokedAt).toBeInstanceOf(Date);
    }
  });

  it("reports exactly one of concurrent revocations of a session as the one that revoked it", async () => {
    const opened = await open(user());
    const results = await Promise.all([1, 2, 3, 4].map((n) => service.revoke(opened.sessionId, `reason-${n}`)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await service.revoke("no-such-session", "x")).toBe(false);
  });

  it("refuses a replayed token even after it expired, and an expired unused one without revoking", async () => {
    const opened = await open(user());
    const rotated = await service.rotate(opened.refreshToken, client);
    clock += 8 * DAY_MS;
    await expectRefused(service.rotate(opened.refreshToken, client), "credential_revoked");
    await expectRefused(service.rotate(rotated.refreshToken, client));
    expect(reused).toHaveLength(1);
  });

  it("refuses an expired refresh token, and one of a revoked session", async () => {
    const opened = await open(user());
    clock += 7 * DAY_MS + 1;
    const error = await expectRefused(service.rotate(opened.refreshToken, client));
    expect(error.message).toBe("invalid refresh token");
    expect(reused).toEqual([]);

    clock = Date.now();
    const other = await open(user());
    expect(await service.revoke(other.sessionId, "logout")).toBe(true);
    expect(await service.revoke(other.sessionId, "logout")).toBe(false);
    await expectRefused(service.rotate(other.refreshToken, client));
    expect(reused).toEqual([]);
  });

  it("refuses unknown and malformed tokens; malformed ones without a database query", async () => {
    const find = vi.spyOn(tokensStore, "find");
    const claim = vi.spyOn(tokensStore, "claim");
    const garbage = [
      "",
      "rt_",
      "rt_short",
      `xx_${"A".repeat(43)}`,
      `rt_${"A".repeat(42)}`,
      `rt_${"A".repeat(44)}`,
      `rt_${"A".repeat(42)}=`,
      `rt_${"A".repeat(42)}+`,
      `rt_${"A".repeat(42)}/`,
      `rt_{"$ne":null}`,
      { $ne: null } as never,
      42 as never,
    ];
    for (const token of garbage) {
      await expectRefused(service.rotate(token, client));
      expect(await service.findByRefreshToken(token)).toBeUndefined();
    }
    expect(find).not.toHaveBeenCalled();
    expect(claim).not.toHaveBeenCalled();

    await expectRefused(service.rotate(`rt_${"A".repeat(43)}`, client));
    expect(claim).toHaveBeenCalledTimes(1);
  });

  it("revokes all of a user's sessions but one, and lists only active sessions", async () => {
    const userId = user();
    const bystander = await open(user());
    const a = await open(userId);
    clock += 1;
    const b = await open(userId);
    clock += 1;
    const c = await open(userId);
    clock += 1_000;
    await service.rotate(b.refreshToken, client);
    // Most recently used first.
    expect((await service.listForUser(userId)).map((s) => s.id)).toEqual([b.sessionId, c.sessionId, a.sessionId]);

    expect(await service.revokeAllForUser(userId, "password_changed", b.sessionId)).toBe(2);
    expect((await service.listForUser(userId)).map((s) => s.id)).toEqual([b.sessionId]);
    expect(await service.get(a.sessionId)).toMatchObject({ revokeReason: "password_changed" });
    expect(await service.revokeAllForUser(userId, "again")).toBe(1);
    expect(await service.listForUser(userId)).toEqual([]);
    // Someone else's session was left alone.
    expect((await service.get(bystander.sessionId))?.revokedAt).toBeUndefined();

    // Expired sessions are not listed either.
    const later = user();
    await open(later);
    clock += 7 * DAY_MS + 1;
    expect(await service.listForUser(later)).toEqual([]);
  });

  it("revokes every session in an emergency, except the caller's", async () => {
    const keep = await open(user());
    const others = [await open(user()), await open(user())];
    expect(await service.revokeAll("emergency", keep.sessionId)).toBeGreaterThanOrEqual(2);
    for (const s of others) await expectRefused(service.rotate(s.refreshToken, client));
    expect((await service.get(keep.sessionId))?.revokedAt).toBeUndefined();
    await expect(service.rotate(keep.refreshToken, client)).resolves.toMatchObject({ sessionId: keep.sessionId });
    expect(await service.revokeAll("emergency")).toBeGreaterThanOrEqual(1);
  });

  it("stores only hashes: the raw token appears nowhere in the database", async () => {
    const opened = await open(user());
    const rotated = await service.rotate(opened.refreshToken, client);
    await service.revoke(opened.sessionId, "logout");
    const docs = [];
    for (const name of ["refresh_tokens", "refresh_token_claims", "sessions", "session_revocations"]) {
      docs.push(...(await database.store.db.collection(name).find({}).toArray()));
    }
    const dump = JSON.stringify(docs);
    for (const token of [opened.refreshToken, rotated.refreshToken]) {
      expect(dump).not.toContain(token);
      expect(dump).not.toContain(token.slice(3));
      expect(dump).toContain(hashRefreshToken(token));
    }
    const stored = await database.store.db.collection("refresh_tokens").findOne({ _id: hashRefreshToken(opened.refreshToken) as never });
    expect(Object.keys(stored ?? {}).sort()).toEqual(["_id", "createdAt", "expiresAt", "sessionId", "usedAt", "userId"]);
  });

  it("sweeps tokens and sessions expired for more than a day", async () => {
    const old = await open(user());
    const fresh = await open(user());
    await database.store.db.collection("sessions").updateOne({ _id: old.sessionId as never }, { $set: { expiresAt: new Date(clock - DAY_MS - 1) } });
    await database.store.db.collection("refresh_tokens").updateOne({ _id: hashRefreshToken(old.refreshToken) as never }, { $set: { expiresAt: new Date(clock - DAY_MS - 1) } });
    expect(await sessionsStore.sweepExpired(new Date(clock))).toBeGreaterThanOrEqual(1);
    expect(await tokensStore.sweepExpired(new Date(clock))).toBeGreaterThanOrEqual(1);
    expect(await service.get(old.sessionId)).toBeUndefined();
    expect(await service.findByRefreshToken(old.refreshToken)).toBeUndefined();
    expect(await service.get(fresh.sessionId)).toBeDefined();
    expect(await service.findByRefreshToken(fresh.refreshToken)).toBeDefined();
  });
});
