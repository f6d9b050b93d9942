import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { loginWithMfa, startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );

describe("accounts and RBAC", () => {
  let gw: IdentityServer;
  let owner: { accessToken: string; sessionId: string; backupCodes: string[] };
  let nextCode = 0;
  const fresh = () => owner.backupCodes[nextCode++]!;
  const as = (token: string) => gw.client(AuthService, { token });
  const login = async (username: string) => (await gw.client(AuthService).login({ username, password: testPassword(username) })).accessToken;

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("olivia", "owner");
    await gw.createUser("adam", "admin");
    await gw.createUser("uma", "user");
    owner = await loginWithMfa(gw, "olivia");
  });
  afterAll(async () => {
    await gw.close();
  });

  it("lets admins manage users and denies users with PERMISSION_DENIED", async () => {
    const user = as(await login("uma"));
    expect((await codeOf(user.listUsers({})))?.code).toBe(Code.PermissionDenied);
    expect((await codeOf(user.createUser({ username: "x1", password: testPassword("x1"), role: Role.USER })))?.code).toBe(Code.PermissionDenied);
    const admin = as(await login("adam"));
    const created = await admin.createUser({ username: "newbie", email: "newbie@example.com", password: testPassword("newbie"), role: Role.USER });
    expect(created.user).toMatchObject({ username: "newbie", email: "newbie@example.com", role: Role.USER, disabled: false });
    const listed = await admin.listUsers({ pageSize: 2 });
    expect(listed.users).toHaveLength(2);
    expect(listed.nextPageToken).not.toBe("");
    const rest = await admin.listUsers({ pageSize: 500, pageToken: listed.nextPageToken });
    expect(rest.users.map((u) => u.username)).not.toContain(listed.users[0]!.username);
    expect((await codeOf(admin.listUsers({ pageToken: "garbage!!" })))?.code).toBe(Code.InvalidArgument);
    expect((await codeOf(admin.getUser({ userId: "no-such-user" })))?.code).toBe(Code.NotFound);
  });

  it("lets nobody grant a role above their own; only owners create admins, with a fresh MFA code", async () => {
    const admin = as(await login("adam"));
    expect((await codeOf(admin.createUser({ username: "admin2", password: testPassword("admin2"), role: Role.ADMIN }, { headers: { "x-mfa-code": "000000" } })))?.code).toBe(Code.PermissionDenied);
    const ownerAuth = as(owner.accessToken);
    const noCode = await codeOf(ownerAuth.createUser({ username: "admin2", password: testPassword("admin2"), role: Role.ADMIN }));
    expect(noCode?.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorReason.FRESH_MFA_REQUIRED);
    const created = await ownerAuth.createUser({ username: "admin2", password: testPassword("admin2"), role: Role.ADMIN }, { headers: { "x-mfa-code": fresh() } });
    expect(created.user?.role).toBe(Role.ADMIN);
  });

  it("needs a fresh MFA code to promote, and applies a demotion to tokens already issued", async () => {
    const ownerAuth = as(owner.accessToken);
    const target = (await as(owner.accessToken).listUsers({ pageSize: 500 })).users.find((u) => u.username === "uma")!;
    const noCode = await codeOf(ownerAuth.updateUser({ userId: target.id, role: Role.ADMIN }));
    expect(noCode?.code).toBe(Code.PermissionDenied);
    expect(noCode?.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorReason.FRESH_MFA_REQUIRED);
    await ownerAuth.updateUser({ userId: target.id, role: Role.ADMIN, mfaCode: fresh() });
    const umaToken = await login("uma");
    await expect(as(umaToken).listUsers({})).resolves.toBeDefined();
    // Demotion needs no code, and the admin token in hand loses admin rights at once.
    await ownerAuth.updateUser({ userId: target.id, role: Role.USER });
    expect((await codeOf(as(umaToken).listUsers({})))?.code).toBe(Code.PermissionDenied);
    const events = await gw.auditEvents("user.update");
    expect(events.length).toBeGreaterThanOrEqual(2);
  });

  it("protects the last active owner", async () => {
    const ownerAuth = as(owner.accessToken);
    const me = await ownerAuth.whoAmI({});
    const demote = await codeOf(ownerAuth.updateUser({ userId: me.user!.id, role: Role.ADMIN }));
    expect([Code.FailedPrecondition, Code.PermissionDenied]).toContain(demote?.code);
    const disable = await codeOf(ownerAuth.updateUser({ userId: me.user!.id, disabled: true }));
    expect(disable?.code).toBe(Code.FailedPrecondition);
    expect((await ownerAuth.getUser({ userId: me.user!.id })).user).toMatchObject({ role: Role.OWNER, disabled: false });
  });

  it("disabling a user ends their sessions and tokens at once", async () => {
    const token = await login("newbie");
    await expect(as(token).whoAmI({})).resolves.toBeDefined();
    const target = (await as(owner.accessToken).listUsers({ pageSize: 500 })).users.find((u) => u.username === "newbie")!;
    await as(owner.accessToken).updateUser({ userId: target.id, disabled: true });
    expect((await codeOf(as(token).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    expect((await codeOf(gw.client(AuthService).login({ username: "newbie", password: testPassword("newbie") })))?.code).toBe(Code.Unauthenticated);
  });

  it("refuses bad input in every string field and stores nothing", async () => {
    const admin = as(await login("adam"));
    const before = await gw.store.db.collection("users").countDocuments();
    const bad = ["a".repeat(10_000), "ctl\u0007char", "$where", "$gt", "semi;colon", ""];
    for (const username of bad) {
      const error = await codeOf(admin.createUser({ username, password: testPassword("bad"), role: Role.USER }));
      expect(error?.code, JSON.stringify(username.slice(0, 20))).toBe(Code.InvalidArgument);
    }
    for (const email of ["not-an-email", "a@b", `${"x".repeat(300)}@example.com`, "bad\u0000@example.com", "two@@example.com"]) {
      expect((await codeOf(admin.createUser({ username: "okname", email, password: testPassword("okname"), role: Role.USER })))?.code).toBe(Code.InvalidArgument);
    }
    expect((await codeOf(admin.createUser({ username: "weakling", password: "password1234", role: Role.USER })))?.code).toBe(Code.InvalidArgument);
    expect((await codeOf(admin.createUser({ username: "norole", password: testPassword("norole"), role: Role.UNSPECIFIED })))?.code).toBe(Code.InvalidArgument);
    expect((await codeOf(admin.createUser({ username: "ADAM", password: testPassword("adam2"), role: Role.USER })))?.code).toBe(Code.AlreadyExists);
    expect(await gw.store.db.collection("users").countDocuments()).toBe(before);
  });

  it("changes a password, ending the caller's other sessions", async () => {
    const first = await gw.client(AuthService).login({ username: "adam", password: testPassword("adam") });
    const second = await gw.client(AuthService).login({ username: "adam", password: testPassword("adam") });
    const auth = as(first.accessToken);
    expect((await codeOf(auth.changePassword({ currentPassword: "wrong-password-123", newPassword: testPassword("adam-new") })))?.code).toBe(Code.PermissionDenied);
    expect((await codeOf(auth.changePassword({ currentPassword: testPassword("adam"), newPassword: "short" })))?.code).toBe(Code.InvalidArgument);
    const changed = await auth.changePassword({ currentPassword: testPassword("adam"), newPassword: testPassword("adam-new") });
    expect(changed.sessionsRevoked).toBeGreaterThanOrEqual(1); // `second`, and earlier tests' sessions
    expect((await codeOf(as(second.accessToken).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    await expect(auth.whoAmI({})).resolves.toBeDefined();
    await expect(gw.client(AuthService).login({ username: "adam", password: testPassword("adam-new") })).resolves.toBeDefined();
  });

  it("shows users only their own sessions; another user's session is NOT_FOUND", async () => {
    const a = await gw.client(AuthService).login({ username: "admin2", password: testPassword("admin2") });
    const other = await gw.client(AuthService).login({ username: "olivia", password: testPassword("olivia"), mfaCode: fresh() });
    const mine = await as(a.accessToken).listSessions({});
    expect(mine.sessions.every((s) => s.userId === mine.sessions[0]!.userId)).toBe(true);
    expect(mine.sessions.find((s) => s.id === a.sessionId)?.current).toBe(true);
    // admin2 holds users.manage, so a plain user is needed to check the NOT_FOUND rule.
    const plain = await gw.client(AuthService).login({ username: "uma", password: testPassword("uma") });
    expect((await codeOf(as(plain.accessToken).revokeSession({ sessionId: other.sessionId })))?.code).toBe(Code.NotFound);
    expect((await codeOf(as(plain.accessToken).revokeSession({ sessionId: "no-such-session" })))?.code).toBe(Code.NotFound);
    expect((await codeOf(as(plain.accessToken).listSessions({ userId: (await as(other.accessToken).whoAmI({})).user!.id })))?.code).toBe(Code.PermissionDenied);
    expect((await as(plain.accessToken).revokeSession({ sessionId: plain.sessionId })).revoked).toBe(true);
  });

  it("pages a user's sessions newest first, and refuses malformed page requests", async () => {
    await gw.createUser("pat", "user");
    const logins = [];
    for (let i = 0; i < 3; i++) logins.push(await gw.client(AuthService).login({ username: "pat", password: testPassword("pat") }));
    const pat = as(logins[2]!.accessToken);
    const first = await pat.listSessions({ pageSize: 2 });
    expect(first.sessions.map((s) => s.id)).toEqual([logins[2]!.sessionId, logins[1]!.sessionId]);
    expect(first.nextPageToken).not.toBe("");
    const second = await pat.listSessions({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.sessions.map((s) => s.id)).toEqual([logins[0]!.sessionId]);
    expect(second.nextPageToken).toBe("");
    expect((await pat.listSessions({})).sessions).toHaveLength(3);
    expect((await pat.listSessions({ pageSize: 501 })).sessions).toHaveLength(3); // clamped, not refused
    for (const bad of [{ pageToken: "garbage!!" }, { pageToken: Buffer.from("12:not-a-session").toString("base64url") }, { pageSize: -1 }]) {
      expect((await codeOf(pat.listSessions(bad)))?.code).toBe(Code.InvalidArgument);
    }
  });
});
