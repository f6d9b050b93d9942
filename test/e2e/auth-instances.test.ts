import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService, LogoutScope } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { loginWithMfa, startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
// The promise: a revocation on one instance takes effect on every instance within 1 second.
const WITHIN = { timeout: 1_000, interval: 50 };

describe("two server instances sharing one database", () => {
  let a: IdentityServer;
  let b: IdentityServer;
  let keys: string;
  const whoAmIOn = (gw: IdentityServer, token: string) => codeOf(gw.client(AuthService, { token }).whoAmI({})).then((e) => e?.code ?? "ok");

  beforeAll(async () => {
    keys = await mkdtemp(join(tmpdir(), "portcullis-keys-"));
    const dbName = testDatabaseName(import.meta.url);
    // Separate key files, as separate machines would have: each verifies the other's published keys.
    a = await startIdentityServer({ dbName, keyFile: join(keys, "a.json") });
    b = await startIdentityServer({ dbName, keyFile: join(keys, "b.json") });
    await a.createUser("owen", "owner");
    await a.createUser("ursula", "user");
    await a.createUser("andy", "admin");
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await rm(keys, { recursive: true, force: true });
  });

  it("accepts at once a token signed by an instance that started after the last key poll", async () => {
    const c = await startIdentityServer({ dbName: a.store.db.databaseName, keyFile: join(keys, "c.json") });
    try {
      const fromC = await c.client(AuthService).login({ username: "ursula", password: testPassword("ursula") });
      expect(await whoAmIOn(a, fromC.accessToken)).toBe("ok");
    } finally {
      await c.close();
    }
  });

  it("accepts a token issued by either instance on both", async () => {
    const fromA = await a.client(AuthService).login({ username: "ursula", password: testPassword("ursula") });
    const fromB = await b.client(AuthService).login({ username: "ursula", password: testPassword("ursula") });
    expect(await whoAmIOn(b, fromA.accessToken)).toBe("ok");
    expect(await whoAmIOn(a, fromB.accessToken)).toBe("ok");
    const refreshedOnB = await b.client(AuthService).refresh({ refreshToken: fromA.refreshToken });
    expect(await whoAmIOn(a, refreshedOnB.accessToken)).toBe("ok");
  });

  it("a logout on one instance is enforced by the other within 1 second", async () => {
    const session = await a.client(AuthService).login({ username: "ursula", password: testPassword("ursula") });
    expect(await whoAmIOn(b, session.accessToken)).toBe("ok");
    await a.client(AuthService, { token: session.accessToken }).logout({ scope: LogoutScope.CURRENT_SESSION });
    await expect.poll(() => whoAmIOn(b, session.accessToken), WITHIN).toBe(Code.Unauthenticated);
  });

  it("RevokeSession, disabling and demoting take effect on the other instance within 1 second", async () => {
    const owner = await a.client(AuthService).login({ username: "owen", password: testPassword("owen") });
    const admin = as(a, owner.accessToken);
    const users = (await admin.listUsers({ pageSize: 500 })).users;
    const andy = users.find((u) => u.username === "andy")!;
    const ursula = users.find((u) => u.username === "ursula")!;

    const victim = await b.client(AuthService).login({ username: "ursula", password: testPassword("ursula") });
    await admin.revokeSession({ sessionId: victim.sessionId });
    await expect.poll(() => whoAmIOn(b, victim.accessToken), WITHIN).toBe(Code.Unauthenticated);

    const andyToken = (await b.client(AuthService).login({ username: "andy", password: testPassword("andy") })).accessToken;
    expect(await codeOf(as(b, andyToken).listUsers({}))).toBeUndefined();
    await admin.updateUser({ userId: andy.id, role: Role.USER });
    await expect.poll(() => codeOf(as(b, andyToken).listUsers({})).then((e) => e?.code), WITHIN).toBe(Code.PermissionDenied);

    const ursulaToken = (await b.client(AuthService).login({ username: "ursula", password: testPassword("ursula") })).accessToken;
    await admin.updateUser({ userId: ursula.id, disabled: true });
    await expect.poll(() => whoAmIOn(b, ursulaToken), WITHIN).toBe(Code.Unauthenticated);
    await admin.updateUser({ userId: ursula.id, disabled: false });
    // Enabled again: a new session works on B within a second too.
    const again = (await a.client(AuthService).login({ username: "ursula", password: testPassword("ursula") })).accessToken;
    await expect.poll(() => whoAmIOn(b, again), WITHIN).toBe("ok");
  });

  it("EmergencyRevoke revokes every session and API key but the caller's, everywhere within 1 second", async () => {
    const owner = await loginWithMfa(a, "owen");
    const others = await Promise.all([
      b.client(AuthService).login({ username: "ursula", password: testPassword("ursula") }),
      a.client(AuthService).login({ username: "andy", password: testPassword("andy") }),
    ]);
    // Real keys, created through the API: two live ones and one already revoked.
    const keyOf = (gw: IdentityServer, token: string, name: string) =>
      gw
        .client(ApiKeyService, { token })
        .createApiKey({ name, scopes: ["ai.status"] })
        .then((r) => r.secret);
    const liveKeys = [await keyOf(a, others[0].accessToken, "ursula-ci"), await keyOf(b, others[1].accessToken, "andy-ci")];
    const deadKey = await a.client(ApiKeyService, { token: others[0].accessToken }).createApiKey({ name: "old", scopes: ["ai.status"] });
    await a.client(ApiKeyService, { token: others[0].accessToken }).revokeApiKey({ keyId: deadKey.apiKey!.id, reason: "retired" });
    for (const key of liveKeys) expect(await whoAmIOn(b, key)).toBe("ok");
    const ownerAuth = as(a, owner.accessToken);
    expect((await codeOf(ownerAuth.emergencyRevoke({ reason: "" }, { headers: { "x-mfa-code": owner.backupCodes[0]! } })))?.code).toBe(Code.InvalidArgument);
    expect((await codeOf(ownerAuth.emergencyRevoke({ reason: "laptop stolen" })))?.code).toBe(Code.PermissionDenied);
    const result = await ownerAuth.emergencyRevoke({ reason: "laptop stolen", mfaCode: owner.backupCodes[1]! });
    expect(result.sessionsRevoked).toBeGreaterThanOrEqual(2n);
    expect(result.apiKeysRevoked).toBe(2n);
    for (const other of others) {
      await expect.poll(() => whoAmIOn(b, other.accessToken), WITHIN).toBe(Code.Unauthenticated);
      expect(await whoAmIOn(a, other.accessToken)).toBe(Code.Unauthenticated);
    }
    for (const key of liveKeys) {
      await expect.poll(() => whoAmIOn(b, key), WITHIN).toBe(Code.Unauthenticated);
      expect(await whoAmIOn(a, key)).toBe(Code.Unauthenticated);
    }
    expect(await whoAmIOn(b, owner.accessToken)).toBe("ok");
    const [event] = await a.auditEvents("system.emergency_revoke");
    expect(event).toMatchObject({ outcome: "success", reason: "laptop stolen", metadata: { revoked_api_credentials: 2 } });
  });
});

function as(gw: IdentityServer, token: string) {
  return gw.client(AuthService, { token });
}
