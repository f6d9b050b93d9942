import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyFindingKind, ApiKeyService, ApiKeyStatus, RateLimitTier } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthMethod, AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e).code,
  );

describe("API key lifecycle", () => {
  let gw: IdentityServer;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};
  const keysAs = (who: string) => gw.client(ApiKeyService, { token: tokens[who]! });
  const authWithKey = (key: string, header: "bearer" | "x-api-key" = "bearer") => (header === "bearer" ? gw.client(AuthService, { token: key }) : gw.client(AuthService));
  const whoAmIWithKey = (key: string) => codeOf(gw.client(AuthService, { token: key }).whoAmI({})).then((c) => c ?? "ok");
  const keyCount = () => gw.store.db.collection("api_keys").countDocuments();

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    for (const [name, role] of [
      ["owner-olga", "owner"],
      ["admin-ada", "admin"],
      ["user-uma", "user"],
      ["user-vic", "user"],
    ] as const) {
      ids[name] = (await gw.createUser(name, role))._id;
      tokens[name] = (await gw.client(AuthService).login({ username: name, password: testPassword(name) })).accessToken;
    }
  });
  afterAll(async () => {
    await gw.close();
  });

  it("creates a key whose secret is returned once and works as a bearer or x-api-key credential", async () => {
    const created = await keysAs("user-uma").createApiKey({ name: "ci", scopes: ["ai.status", "keys.read"], metadata: { team: "infra" } });
    const secret = created.secret;
    expect(secret).toMatch(/^sk_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}$/);
    expect(created.apiKey).toMatchObject({ name: "ci", status: ApiKeyStatus.ACTIVE, ownerUserId: ids["user-uma"], rateLimitTier: RateLimitTier.STANDARD, prefix: `sk_${created.apiKey!.id}` });
    expect(created.apiKey!.scopes).toEqual(["ai.status", "keys.read"]);
    // Default expiry: 90 days.
    const lifetime = Number(created.apiKey!.expiresAt!.seconds - created.apiKey!.createdAt!.seconds);
    expect(lifetime).toBe(90 * 86_400);

    for (const header of ["bearer", "x-api-key"] as const) {
      const me = await authWithKey(secret, header).whoAmI({}, header === "x-api-key" ? { headers: { "x-api-key": secret } } : {});
      expect(me).toMatchObject({ principal: { userId: ids["user-uma"], role: Role.USER, id: created.apiKey!.id }, authMethod: AuthMethod.API_KEY, sessionId: "" });
      expect([...me.permissions].sort()).toEqual(["ai.status", "keys.read"]);
    }
    // keys.write is not among the key's scopes: the key cannot mint more keys.
    expect(await codeOf(gw.client(ApiKeyService, { token: secret }).createApiKey({ name: "x", scopes: ["ai.status"] }))).toBe(Code.PermissionDenied);

    // Never again: not in Get, List, or the database.
    const got = await keysAs("user-uma").getApiKey({ keyId: created.apiKey!.id });
    const listed = await keysAs("user-uma").listApiKeys({});
    const stored = await gw.store.db.collection("api_keys").findOne({ _id: created.apiKey!.id as never });
    for (const text of [JSON.stringify(got, bigints), JSON.stringify(listed, bigints), JSON.stringify(stored)]) {
      expect(text).not.toContain(secret.split("_")[2]!.slice(0, 20));
    }
    expect(stored).toMatchObject({ ownerUserId: ids["user-uma"], secretHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await gw.auditEvents("api_key.create")).some((e) => (e["target"] as { id: string }).id === created.apiKey!.id)).toBe(true);
  });

  it("refuses scopes beyond the caller's permissions, unknown scopes and bad settings, storing nothing", async () => {
    const before = await keyCount();
    const cases: Array<[Parameters<ReturnType<typeof keysAs>["createApiKey"]>[0], Code]> = [
      [{ name: "wide", scopes: ["users.manage"] }, Code.PermissionDenied],
      [{ name: "wide", scopes: ["ai.status", "system.emergency"] }, Code.PermissionDenied],
      [{ name: "unknown", scopes: ["root"] }, Code.InvalidArgument],
      [{ name: "none", scopes: [] }, Code.InvalidArgument],
      [{ name: "", scopes: ["ai.status"] }, Code.InvalidArgument],
      [{ name: "x".repeat(101), scopes: ["ai.status"] }, Code.InvalidArgument],
      [{ name: "bell\u0007", scopes: ["ai.status"] }, Code.InvalidArgument],
      [{ name: "long", scopes: ["ai.status"], expiresIn: durationFromMs(400 * 86_400_000) }, Code.InvalidArgument],
      [{ name: "negative", scopes: ["ai.status"], expiresIn: durationFromMs(-1000) }, Code.InvalidArgument],
      [{ name: "forever", scopes: ["ai.status"], noExpiry: true }, Code.FailedPrecondition],
      [{ name: "both", scopes: ["ai.status"], noExpiry: true, expiresIn: durationFromMs(60_000) }, Code.InvalidArgument],
      [{ name: "net", scopes: ["ai.status"], allowedCidrs: ["10.0.0.0/33"] }, Code.InvalidArgument],
      [{ name: "meta", scopes: ["ai.status"], metadata: { $where: "1" } }, Code.InvalidArgument],
      [{ name: "tier", scopes: ["ai.status"], rateLimitTier: 99 as RateLimitTier }, Code.InvalidArgument],
    ];
    for (const [request, code] of cases) expect(await codeOf(keysAs("user-uma").createApiKey(request)), request.name).toBe(code);
    expect(await keyCount()).toBe(before);
  });

  it("lists own keys newest first with pagination and a status filter; admins may list others', audited", async () => {
    const made: string[] = [];
    for (const name of ["v1", "v2", "v3"]) made.push((await keysAs("user-vic").createApiKey({ name, scopes: ["ai.query"] })).apiKey!.id);
    await keysAs("user-vic").revokeApiKey({ keyId: made[0]!, reason: "test" });

    const first = await keysAs("user-vic").listApiKeys({ pageSize: 2 });
    expect(first.apiKeys.map((k) => k.name)).toEqual(["v3", "v2"]);
    const second = await keysAs("user-vic").listApiKeys({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.apiKeys.map((k) => k.name)).toEqual(["v1"]);
    expect(second.nextPageToken).toBe("");
    expect((await keysAs("user-vic").listApiKeys({ status: ApiKeyStatus.REVOKED })).apiKeys.map((k) => k.name)).toEqual(["v1"]);
    expect((await keysAs("user-vic").listApiKeys({ status: ApiKeyStatus.ACTIVE })).apiKeys.map((k) => k.name)).toEqual(["v3", "v2"]);
    expect(await codeOf(keysAs("user-vic").listApiKeys({ pageToken: "garbage!" }))).toBe(Code.InvalidArgument);
    // Above the maximum is clamped (common.proto), not refused; negative is refused.
    expect((await keysAs("user-vic").listApiKeys({ pageSize: 1_000_000_000 })).apiKeys.map((k) => k.name)).toEqual(["v3", "v2", "v1"]);
    expect(await codeOf(keysAs("user-vic").listApiKeys({ pageSize: -1 }))).toBe(Code.InvalidArgument);

    // Another user's keys: a user may not ask; an admin may, and it is audited.
    expect(await codeOf(keysAs("user-uma").listApiKeys({ userId: ids["user-vic"]! }))).toBe(Code.PermissionDenied);
    expect(await codeOf(keysAs("user-uma").listApiKeys({ allUsers: true }))).toBe(Code.PermissionDenied);
    const seenByAdmin = await keysAs("admin-ada").listApiKeys({ userId: ids["user-vic"]! });
    expect(seenByAdmin.apiKeys.map((k) => k.name)).toEqual(["v3", "v2", "v1"]);
    expect((await keysAs("admin-ada").listApiKeys({ allUsers: true })).apiKeys.length).toBeGreaterThanOrEqual(4);
    const audited = await gw.auditEvents("api_key.list");
    expect(audited.some((e) => (e["target"] as { id: string }).id === ids["user-vic"])).toBe(true);
  });

  it("answers NOT_FOUND for another user's key, whatever the operation, and changes nothing", async () => {
    const theirs = (await keysAs("user-vic").createApiKey({ name: "private", scopes: ["ai.query"] })).apiKey!;
    const before = await gw.store.db.collection("api_keys").findOne({ _id: theirs.id as never });
    const uma = keysAs("user-uma");
    expect(await codeOf(uma.getApiKey({ keyId: theirs.id }))).toBe(Code.NotFound);
    expect(await codeOf(uma.updateApiKey({ keyId: theirs.id, name: "mine now" }))).toBe(Code.NotFound);
    expect(await codeOf(uma.rotateApiKey({ keyId: theirs.id }))).toBe(Code.NotFound);
    expect(await codeOf(uma.revokeApiKey({ keyId: theirs.id, reason: "x" }))).toBe(Code.NotFound);
    expect(await codeOf(uma.getApiKey({ keyId: "0000000000000000" }))).toBe(Code.NotFound);
    expect(await codeOf(uma.getApiKey({ keyId: '{"$ne":1}' }))).toBe(Code.NotFound);
    expect(await gw.store.db.collection("api_keys").findOne({ _id: theirs.id as never })).toEqual(before);
    expect(await gw.store.db.collection("api_key_revocations").findOne({ _id: theirs.id as never })).toBeNull();
    expect((await keysAs("user-vic").getApiKey({ keyId: theirs.id })).apiKey!.status).toBe(ApiKeyStatus.ACTIVE);
  });

  it("updates settings and narrows scopes at once, but never widens them", async () => {
    const { apiKey, secret } = await keysAs("user-uma").createApiKey({ name: "narrow-me", scopes: ["ai.status", "keys.read"] });
    const updated = await keysAs("user-uma").updateApiKey({
      keyId: apiKey!.id,
      name: "narrowed",
      scopes: { values: ["ai.status"] },
      rateLimitTier: RateLimitTier.BASIC,
      allowedCidrs: { values: ["127.0.0.1/32"] },
      metadata: { entries: { env: "ci" } },
    });
    expect(updated.apiKey).toMatchObject({ name: "narrowed", scopes: ["ai.status"], rateLimitTier: RateLimitTier.BASIC, allowedCidrs: ["127.0.0.1/32"], metadata: { env: "ci" } });
    expect((await gw.client(AuthService, { token: secret }).whoAmI({})).permissions).toEqual(["ai.status"]);
    expect(await codeOf(keysAs("user-uma").updateApiKey({ keyId: apiKey!.id, scopes: { values: ["ai.status", "keys.read"] } }))).toBe(Code.PermissionDenied);
    expect(await codeOf(keysAs("user-uma").updateApiKey({ keyId: apiKey!.id, scopes: { values: [] } }))).toBe(Code.InvalidArgument);
    expect((await keysAs("user-uma").getApiKey({ keyId: apiKey!.id })).apiKey!.scopes).toEqual(["ai.status"]);
  });

  it("rotates: the new key works at once, the old one through its grace period only, and only once", async () => {
    const { apiKey, secret: oldSecret } = await keysAs("user-uma").createApiKey({ name: "rotating", scopes: ["ai.status"] });
    expect(await codeOf(keysAs("user-uma").rotateApiKey({ keyId: apiKey!.id, gracePeriod: durationFromMs(25 * 3_600_000) }))).toBe(Code.InvalidArgument);
    const rotated = await keysAs("user-uma").rotateApiKey({ keyId: apiKey!.id, gracePeriod: durationFromMs(1_500) });
    expect(rotated.parentKeyId).toBe(apiKey!.id);
    expect(rotated.apiKey).toMatchObject({ parentKeyId: apiKey!.id, name: "rotating", scopes: ["ai.status"], status: ApiKeyStatus.ACTIVE });
    expect(await whoAmIWithKey(rotated.secret)).toBe("ok");
    expect(await whoAmIWithKey(oldSecret)).toBe("ok");
    expect((await keysAs("user-uma").getApiKey({ keyId: apiKey!.id })).apiKey!.status).toBe(ApiKeyStatus.ROTATED);
    expect(await codeOf(keysAs("user-uma").rotateApiKey({ keyId: apiKey!.id }))).toBe(Code.FailedPrecondition);
    await expect.poll(() => whoAmIWithKey(oldSecret), { timeout: 3_000, interval: 100 }).toBe(Code.Unauthenticated);
    expect(await whoAmIWithKey(rotated.secret)).toBe("ok");

    // Without a grace period the old key stops at once.
    const again = await keysAs("user-uma").rotateApiKey({ keyId: rotated.apiKey!.id });
    expect(await whoAmIWithKey(rotated.secret)).toBe(Code.Unauthenticated);
    expect(await whoAmIWithKey(again.secret)).toBe("ok");
    expect((await gw.auditEvents("api_key.rotate")).length).toBeGreaterThanOrEqual(2);
  });

  it("revokes with a reason (CREDENTIAL_REVOKED afterwards), idempotently, and revokes all of mine or, for owners, everyone's", async () => {
    const { apiKey, secret } = await keysAs("user-uma").createApiKey({ name: "revoke-me", scopes: ["ai.status"] });
    expect(await codeOf(keysAs("user-uma").revokeApiKey({ keyId: apiKey!.id, reason: "  " }))).toBe(Code.InvalidArgument);
    expect(await whoAmIWithKey(secret)).toBe("ok");
    const revoked = await keysAs("user-uma").revokeApiKey({ keyId: apiKey!.id, reason: "leaked in a log" });
    expect(revoked.apiKey).toMatchObject({ status: ApiKeyStatus.REVOKED, revokeReason: "leaked in a log" });
    const error = await gw
      .client(AuthService, { token: secret })
      .whoAmI({})
      .catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    const again = await keysAs("user-uma").revokeApiKey({ keyId: apiKey!.id, reason: "second time" });
    expect(again.apiKey!.revokeReason).toBe("leaked in a log");

    const mine = await keysAs("user-uma").createApiKey({ name: "bulk", scopes: ["ai.status"] });
    const vics = await keysAs("user-vic").createApiKey({ name: "bulk", scopes: ["ai.query"] });
    expect(await codeOf(keysAs("admin-ada").revokeAllApiKeys({ reason: "x", allUsers: true }))).toBe(Code.PermissionDenied);
    expect(await codeOf(keysAs("user-uma").revokeAllApiKeys({ reason: "" }))).toBe(Code.InvalidArgument);
    const count = await keysAs("user-uma").revokeAllApiKeys({ reason: "laptop lost" });
    expect(count.revokedCount).toBeGreaterThanOrEqual(1n);
    expect(await whoAmIWithKey(mine.secret)).toBe(Code.Unauthenticated);
    expect(await whoAmIWithKey(vics.secret)).toBe("ok");
    expect((await keysAs("owner-olga").revokeAllApiKeys({ reason: "incident", allUsers: true })).revokedCount).toBeGreaterThanOrEqual(1n);
    expect(await whoAmIWithKey(vics.secret)).toBe(Code.Unauthenticated);
    expect((await gw.auditEvents("api_key.revoke_all")).length).toBeGreaterThanOrEqual(2);
  });

  it("expires keys on time with CREDENTIAL_EXPIRED, and reports them as expired", async () => {
    const { apiKey, secret } = await keysAs("user-uma").createApiKey({ name: "short", scopes: ["ai.status"], expiresIn: durationFromMs(1_000) });
    expect(await whoAmIWithKey(secret)).toBe("ok");
    await new Promise((r) => setTimeout(r, 1_100));
    const error = await gw
      .client(AuthService, { token: secret })
      .whoAmI({})
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(error?.rawMessage).toBe("API key expired");
    expect((await keysAs("user-uma").getApiKey({ keyId: apiKey!.id })).apiKey!.status).toBe(ApiKeyStatus.EXPIRED);
    expect(await codeOf(keysAs("user-uma").rotateApiKey({ keyId: apiKey!.id }))).toBe(Code.FailedPrecondition);
  });

  it("refuses a key outside its allowed networks with PERMISSION_DENIED", async () => {
    const elsewhere = await keysAs("user-uma").createApiKey({ name: "office-only", scopes: ["ai.status"], allowedCidrs: ["10.0.0.0/8", "2001:db8::/32"] });
    const here = await keysAs("user-uma").createApiKey({ name: "loopback", scopes: ["ai.status"], allowedCidrs: ["127.0.0.0/8"] });
    expect(await whoAmIWithKey(elsewhere.secret)).toBe(Code.PermissionDenied);
    expect(await whoAmIWithKey(here.secret)).toBe("ok");
  });

  it("narrows or disables keys at once when their owner is demoted or disabled", async () => {
    const username = "user-dee";
    const dee = (await gw.createUser(username, "admin"))._id;
    const deeToken = (await gw.client(AuthService).login({ username, password: testPassword(username) })).accessToken;
    const { secret } = await gw.client(ApiKeyService, { token: deeToken }).createApiKey({ name: "admin-tool", scopes: ["users.manage", "ai.status"] });
    expect(await codeOf(gw.client(AuthService, { token: secret }).listUsers({}))).toBeUndefined();
    await gw.client(AuthService, { token: tokens["owner-olga"]! }).updateUser({ userId: dee, role: Role.USER });
    expect(await codeOf(gw.client(AuthService, { token: secret }).listUsers({}))).toBe(Code.PermissionDenied);
    expect((await gw.client(AuthService, { token: secret }).whoAmI({})).permissions).toEqual(["ai.status"]);
    await gw.client(AuthService, { token: tokens["owner-olga"]! }).updateUser({ userId: dee, disabled: true });
    expect(await whoAmIWithKey(secret)).toBe(Code.Unauthenticated);
    // Health advice names the dead key of the disabled owner.
    const health = await keysAs("admin-ada").getApiKeyHealth({ userId: dee });
    expect(health.findings).toContainEqual(expect.objectContaining({ kind: ApiKeyFindingKind.OWNER_DISABLED, ownerUserId: dee, keyName: "admin-tool" }));
  });

  it("verifies keys for other services (keys.verify) without counting it as use", async () => {
    const { apiKey, secret } = await keysAs("user-uma").createApiKey({ name: "verify-me", scopes: ["ai.query", "ai.status"], rateLimitTier: RateLimitTier.BASIC });
    expect(await codeOf(keysAs("user-uma").verifyApiKey({ apiKey: secret }))).toBe(Code.PermissionDenied);
    const verified = await keysAs("admin-ada").verifyApiKey({ apiKey: secret, clientIp: "203.0.113.7" });
    expect(verified).toMatchObject({
      valid: true,
      keyId: apiKey!.id,
      ownerUserId: ids["user-uma"],
      scopes: ["ai.query", "ai.status"],
      rateLimitTier: RateLimitTier.BASIC,
      status: ApiKeyStatus.ACTIVE,
    });
    expect((await keysAs("admin-ada").verifyApiKey({ apiKey: secret.slice(0, -1) + (secret.endsWith("a") ? "b" : "a") })).valid).toBe(false);
    expect((await keysAs("admin-ada").verifyApiKey({ apiKey: "sk_garbage" })).valid).toBe(false);
    expect(await codeOf(keysAs("admin-ada").verifyApiKey({ apiKey: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(keysAs("admin-ada").verifyApiKey({ apiKey: secret, clientIp: "not-an-ip" }))).toBe(Code.InvalidArgument);
    await gw.gateway.runNow.writeKeyUsage();
    expect((await keysAs("user-uma").getApiKey({ keyId: apiKey!.id })).apiKey!.usageCount).toBe(0n);
    await keysAs("user-uma").revokeApiKey({ keyId: apiKey!.id, reason: "done" });
    expect(await keysAs("admin-ada").verifyApiKey({ apiKey: secret })).toMatchObject({ valid: false, keyId: "" });
  });

  it("exchanges a key for a short-lived JWT with the key's scopes, which dies with the key", async () => {
    const { apiKey, secret } = await keysAs("user-uma").createApiKey({ name: "exchange", scopes: ["ai.query", "ai.status"] });
    const anonymous = gw.client(AuthService);
    const exchanged = await anonymous.exchangeApiKey({ apiKey: secret, scopes: ["ai.status"], ttl: durationFromMs(60_000) });
    expect(exchanged).toMatchObject({ apiKeyId: apiKey!.id, scopes: ["ai.status"] });
    expect(Number(exchanged.expiresAt!.seconds) - Date.now() / 1000).toBeLessThanOrEqual(61);
    const me = await gw.client(AuthService, { token: exchanged.accessToken }).whoAmI({});
    expect(me).toMatchObject({ principal: { userId: ids["user-uma"], id: apiKey!.id }, authMethod: AuthMethod.EXCHANGED_API_KEY, permissions: ["ai.status"] });
    expect(await codeOf(anonymous.exchangeApiKey({ apiKey: secret, scopes: ["users.manage"] }))).toBe(Code.PermissionDenied);
    expect(await codeOf(anonymous.exchangeApiKey({ apiKey: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(anonymous.exchangeApiKey({ apiKey: secret, ttl: durationFromMs(-5) }))).toBe(Code.InvalidArgument);
    expect(await codeOf(anonymous.exchangeApiKey({ apiKey: `${secret}x` }))).toBe(Code.Unauthenticated);
    await keysAs("user-uma").revokeApiKey({ keyId: apiKey!.id, reason: "done" });
    expect(await whoAmIWithKey(exchanged.accessToken)).toBe(Code.Unauthenticated);
    expect(await codeOf(anonymous.exchangeApiKey({ apiKey: secret }))).toBe(Code.Unauthenticated);
  });

  it("counts usage without a write per request, and reports stats and health findings with advice", async () => {
    const { apiKey, secret } = await keysAs("user-vic").createApiKey({ name: "counted", scopes: ["ai.status"] });
    for (let i = 0; i < 7; i++) await gw.client(AuthService, { token: secret }).whoAmI({});
    const usageWrites = () => gw.databaseCommands().filter((c) => ["update", "insert"].includes(c.commandName) && c.command[c.commandName] === "api_key_usage").length;
    const writesBefore = usageWrites();
    const key = (await keysAs("user-vic").getApiKey({ keyId: apiKey!.id })).apiKey!;
    expect(usageWrites()).toBe(writesBefore); // reading merges this instance's unwritten counts; it writes nothing
    expect(key.usageCount).toBe(7n);
    expect(key.lastUsedIp).toMatch(/127\.0\.0\.1/);
    expect(key.lastUsedAt).toBeDefined();
    const stats = await keysAs("user-vic").getApiKeyStats({});
    expect(stats.activeCount).toBeGreaterThanOrEqual(1n);
    expect(stats.totalUsageCount).toBeGreaterThanOrEqual(7n);
    expect(stats.totalCount).toBe(stats.activeCount + stats.rotatedCount + stats.revokedCount + stats.expiredCount);
    expect(await codeOf(keysAs("user-vic").getApiKeyStats({ allUsers: true }))).toBe(Code.PermissionDenied);

    // Age a key in the database: health finds it old and unused; an admin key living long is flagged too.
    const stale = await keysAs("user-vic").createApiKey({ name: "stale", scopes: ["ai.status"] });
    const longAgo = new Date(Date.now() - 100 * 86_400_000);
    await gw.store.db.collection("api_keys").updateOne({ _id: stale.apiKey!.id as never }, { $set: { createdAt: longAgo, expiresAt: new Date(Date.now() + 86_400_000), updatedAt: new Date() } });
    await keysAs("admin-ada").createApiKey({ name: "admin-long", scopes: ["users.manage"], expiresIn: durationFromMs(60 * 86_400_000) });
    const health = await keysAs("user-vic").getApiKeyHealth({});
    const kindsOf = (id: string) =>
      health.findings
        .filter((f) => f.keyId === id)
        .map((f) => f.kind)
        .sort();
    expect(kindsOf(stale.apiKey!.id)).toEqual([ApiKeyFindingKind.OLDER_THAN_90_DAYS, ApiKeyFindingKind.UNUSED_30_DAYS]);
    expect(kindsOf(apiKey!.id)).toEqual([]);
    expect(health.findings.every((f) => f.advice.length > 0 && f.ownerUserId === ids["user-vic"])).toBe(true);
    const adminHealth = await keysAs("admin-ada").getApiKeyHealth({});
    expect(adminHealth.findings.map((f) => f.kind)).toContain(ApiKeyFindingKind.ADMIN_SCOPES_LONG_LIVED);
    expect(adminHealth.findings[0]!.severity).toBeGreaterThanOrEqual(adminHealth.findings.at(-1)!.severity);
  });
});

function bigints(_key: string, value: unknown) {
  return typeof value === "bigint" ? value.toString() : value;
}
