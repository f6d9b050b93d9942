import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );

describe("login", () => {
  let gw: IdentityServer;
  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("alice", "user");
    const disabled = await gw.createUser("dora", "user");
    await gw.store.db.collection("users").updateOne({ _id: disabled._id as never }, { $set: { disabled: true, updatedAt: new Date() } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it("exchanges a username and password for tokens and a session, over gRPC and Connect", async () => {
    for (const protocol of ["grpc", "connect"] as const) {
      const auth = gw.client(AuthService, { protocol });
      const res = await auth.login({ username: "alice", password: testPassword("alice") });
      expect(res.accessToken.split(".")).toHaveLength(3);
      expect(res.refreshToken).toMatch(/^rt_/);
      expect(res.user?.username).toBe("alice");
      expect(res.user?.role).toBe(Role.USER);
      expect(res.sessionId).not.toBe("");
      const me = await gw.client(AuthService, { token: res.accessToken, protocol }).whoAmI({});
      expect(me.user?.username).toBe("alice");
      expect(me.sessionId).toBe(res.sessionId);
      expect(me.permissions).toContain("ai.query");
      expect(me.permissions).not.toContain("users.manage");
    }
  });

  it("accepts the username case-insensitively and in any Unicode normal form", async () => {
    const auth = gw.client(AuthService);
    await expect(auth.login({ username: "ALICE", password: testPassword("alice") })).resolves.toMatchObject({ user: { username: "alice" } });
    await expect(auth.login({ username: "ａｌｉｃｅ", password: testPassword("alice") })).resolves.toMatchObject({ user: { username: "alice" } });
  });

  it("answers an unknown user, a wrong password and a disabled account alike", async () => {
    const auth = gw.client(AuthService);
    const errors = await Promise.all([
      codeOf(auth.login({ username: "nobody-here", password: testPassword("x") })),
      codeOf(auth.login({ username: "alice", password: "wrong-password-but-long" })),
      codeOf(auth.login({ username: "dora", password: testPassword("dora") })),
    ]);
    for (const error of errors) {
      expect(error?.code).toBe(Code.Unauthenticated);
      expect(error?.rawMessage).toBe("invalid username, password or code");
    }
  });

  it("refuses bad input with a clear status and never crashes", async () => {
    const auth = gw.client(AuthService);
    expect((await codeOf(auth.login({ username: "", password: "x" })))?.code).toBe(Code.InvalidArgument);
    expect((await codeOf(auth.login({ username: "alice", password: "" })))?.code).toBe(Code.InvalidArgument);
    for (const username of ["a".repeat(10_000), "ali\u0000ce", "$where", '{"$gt":""}', "al ice\n"]) {
      expect((await codeOf(auth.login({ username, password: testPassword("alice") })))?.code).toBe(Code.Unauthenticated);
    }
    expect(await gw.store.db.collection("users").countDocuments({ username: { $regex: "^\\$" } })).toBe(0);
  });

  it("audits every attempt with its outcome, never with the password", async () => {
    const auth = gw.client(AuthService);
    await auth.login({ username: "alice", password: testPassword("alice") });
    await codeOf(auth.login({ username: "alice", password: "definitely-wrong-pass" }));
    const events = await gw.auditEvents("auth.login");
    expect(events.some((e) => e["outcome"] === "success")).toBe(true);
    expect(events.some((e) => e["outcome"] === "failure")).toBe(true);
    const all = JSON.stringify(await gw.store.db.collection("audit_events").find().toArray());
    expect(all).not.toContain(testPassword("alice"));
    expect(all).not.toContain("definitely-wrong-pass");
  });

  it("throttles repeated failures per username with a lock that even the right password cannot pass", async () => {
    const victim = await gw.createUser("mallory-target", "user");
    const auth = gw.client(AuthService);
    const results: Array<ConnectError | undefined> = [];
    for (let i = 0; i < 7; i++) results.push(await codeOf(auth.login({ username: "mallory-target", password: `wrong-password-${i}-xx` })));
    const locked = results.filter((e) => e?.code === Code.ResourceExhausted);
    expect(locked.length).toBeGreaterThan(0);
    const info = locked[0]?.findDetails(ErrorInfoSchema)[0];
    expect(info?.reason).toBe(ErrorReason.LOCKED);
    expect(Number(info?.retryAfterMs)).toBeGreaterThan(0);
    // Even the right password is refused while locked.
    expect((await codeOf(auth.login({ username: "mallory-target", password: testPassword("mallory-target") })))?.code).toBe(Code.ResourceExhausted);
    expect(victim.username).toBe("mallory-target");
  });
});
