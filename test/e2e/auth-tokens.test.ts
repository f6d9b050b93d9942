import { Code, ConnectError } from "@connectrpc/connect";
import { createLocalJWKSet, jwtVerify, SignJWT, generateKeyPair, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService, LogoutScope, TokenType } from "../../gen/portcullis/v1/auth_pb.js";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("tokens", () => {
  let gw: IdentityServer;
  const login = async (username = "bob") => gw.client(AuthService).login({ username, password: testPassword(username) });

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("bob", "user");
    await gw.createUser("carol", "user");
    await gw.createUser("admin-ann", "admin");
  });
  afterAll(async () => {
    await gw.close();
  });

  it("publishes the JWKS so other services verify access tokens offline", async () => {
    const { accessToken } = await login();
    const viaRpc = await gw.client(AuthService).getJwks({});
    const viaHttp = (await (await fetch(`${gw.baseUrl}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, unknown>> };
    expect(viaHttp.keys.map((k) => k["kid"])).toEqual(viaRpc.keys.map((k) => k.kid));
    for (const key of viaHttp.keys) expect(key).not.toHaveProperty("d");
    const { payload, protectedHeader } = await jwtVerify(accessToken, createLocalJWKSet(viaHttp as never), { issuer: "portcullis", audience: "portcullis" });
    expect(protectedHeader.alg).toBe("EdDSA");
    expect(payload).toMatchObject({ role: "user" });
    expect(typeof payload["sid"]).toBe("string");
    expect(typeof payload.jti).toBe("string");
  });

  it("rejects malformed, truncated, re-signed, alg:none and foreign-key tokens with UNAUTHENTICATED", async () => {
    const { accessToken } = await login();
    const [header, payload, signature] = accessToken.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const foreign = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const kid = decodeProtectedHeader(accessToken).kid!;
    const forgedWithKnownKid = await new SignJWT({ ...claims, role: "owner" }).setProtectedHeader({ alg: "EdDSA", kid }).sign(foreign.privateKey);
    const candidates = [
      "not-a-token",
      accessToken.slice(0, -10),
      `${header}.${b64({ ...claims, role: "owner", permissions: ["system.emergency"] })}.${signature}`,
      `${b64({ alg: "none", typ: "JWT" })}.${payload}.`,
      `${b64({ alg: "HS256", kid })}.${payload}.${signature}`,
      forgedWithKnownKid,
      `${accessToken}x`,
      "a".repeat(10_000),
    ];
    for (const token of candidates) {
      const error = await codeOf(gw.client(AiService, { token }).getStatus({}));
      expect(error?.code, token.slice(0, 40)).toBe(Code.Unauthenticated);
    }
  });

  it("rejects an expired token with reason CREDENTIAL_EXPIRED", async () => {
    const short = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_ACCESS_TOKEN_TTL_SECONDS: "30", PORTCULLIS_TOKEN_LEEWAY_SECONDS: "0" } });
    try {
      await short.createUser("erin", "user");
      const { accessToken } = await short.client(AuthService).login({ username: "erin", password: testPassword("erin") });
      const claims = JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()) as { exp: number };
      expect(claims.exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(30);
      // Verify as if 31 s later, against the same keys: the domain service takes a clock.
      const { createAccessTokenService } = await import("../../src/domain/tokens/access-tokens.ts");
      const later = createAccessTokenService({ keys: short.gateway.signingKeys, issuer: "portcullis", audience: "portcullis", leewayMs: 0, now: () => Date.now() + 31_000 });
      const error = await later.verify(accessToken).catch((e: unknown) => e as { reason?: string; code?: string });
      expect(error).toMatchObject({ code: "unauthenticated", reason: "credential_expired" });
    } finally {
      await short.close();
    }
  });

  it("rotates refresh tokens, and a reused one revokes the whole session", async () => {
    const auth = gw.client(AuthService);
    const first = await login();
    const second = await auth.refresh({ refreshToken: first.refreshToken });
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.sessionId).toBe(first.sessionId);
    await expect(gw.client(AuthService, { token: second.accessToken }).whoAmI({})).resolves.toBeDefined();

    const reuse = await codeOf(auth.refresh({ refreshToken: first.refreshToken }));
    expect(reuse?.code).toBe(Code.Unauthenticated);
    expect(reuse?.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorReason.CREDENTIAL_REVOKED);
    // The thief's rotation killed the family: the legitimate successor is dead too, and so are access tokens.
    expect((await codeOf(auth.refresh({ refreshToken: second.refreshToken })))?.code).toBe(Code.Unauthenticated);
    expect((await codeOf(gw.client(AuthService, { token: second.accessToken }).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    await expect.poll(async () => (await gw.auditEvents("auth.refresh_reuse")).length).toBeGreaterThan(0);
  });

  it("refuses garbage refresh tokens without touching the database", async () => {
    const auth = gw.client(AuthService);
    for (const refreshToken of ["", "rt_short", `rt_${"A".repeat(43)}`, "x".repeat(10_000), "rt_$ne", "rt_\u0000"]) {
      const error = await codeOf(auth.refresh({ refreshToken }));
      expect([Code.Unauthenticated, Code.InvalidArgument]).toContain(error?.code);
    }
  });

  it("logs out this session or all sessions", async () => {
    const a = await login("carol");
    const b = await login("carol");
    expect((await gw.client(AuthService, { token: a.accessToken }).logout({ scope: LogoutScope.CURRENT_SESSION })).sessionsRevoked).toBe(1);
    expect((await codeOf(gw.client(AuthService, { token: a.accessToken }).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    await expect(gw.client(AuthService, { token: b.accessToken }).whoAmI({})).resolves.toBeDefined();
    const c = await login("carol");
    const all = await gw.client(AuthService, { token: c.accessToken }).logout({ scope: LogoutScope.ALL_SESSIONS });
    expect(all.sessionsRevoked).toBe(2);
    for (const t of [b.accessToken, c.accessToken]) {
      expect((await codeOf(gw.client(AuthService, { token: t }).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    }
    expect((await codeOf(gw.client(AuthService).refresh({ refreshToken: b.refreshToken })))?.code).toBe(Code.Unauthenticated);
  });

  it("introspects and revokes tokens, only the caller's own unless an admin asks", async () => {
    const bob = await login("bob");
    const carol = await login("carol");
    const bobAuth = gw.client(AuthService, { token: bob.accessToken });
    const info = await bobAuth.getTokenInfo({ token: bob.refreshToken });
    expect(info).toMatchObject({ active: true, tokenType: TokenType.REFRESH, sessionId: bob.sessionId });
    expect((await codeOf(bobAuth.getTokenInfo({ token: carol.accessToken })))?.code).toBe(Code.PermissionDenied);
    expect((await codeOf(bobAuth.revokeToken({ token: carol.refreshToken })))?.code).toBe(Code.PermissionDenied);
    expect(await bobAuth.getTokenInfo({ token: "garbage" })).toMatchObject({ active: false, subject: "" });

    const admin = await login("admin-ann");
    const adminAuth = gw.client(AuthService, { token: admin.accessToken });
    expect((await adminAuth.getTokenInfo({ token: carol.accessToken })).active).toBe(true);
    expect(await adminAuth.revokeToken({ token: carol.refreshToken })).toMatchObject({ revoked: true, tokenType: TokenType.REFRESH });
    expect((await codeOf(gw.client(AuthService, { token: carol.accessToken }).whoAmI({})))?.code).toBe(Code.Unauthenticated);
    expect(await adminAuth.revokeToken({ token: carol.refreshToken })).toMatchObject({ revoked: false });
  });

  it("never returns or stores a token or password anywhere it shouldn't", async () => {
    const bob = await login("bob");
    const dump = JSON.stringify(await Promise.all(["users", "sessions", "refresh_tokens", "audit_events"].map((c) => gw.store.db.collection(c).find().toArray())));
    expect(dump).not.toContain(bob.refreshToken);
    expect(dump).not.toContain(bob.accessToken);
    expect(dump).not.toContain(testPassword("bob"));
    expect(gw.logText()).not.toContain(bob.refreshToken.slice(3));
    expect(gw.logText()).not.toContain(bob.accessToken.split(".")[2]);
  });
});
