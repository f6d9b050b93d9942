import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { ApiKeyService, ApiKeyStatus } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok" as const,
    (e: unknown) => ConnectError.from(e).code,
  );
const PROTOCOLS: readonly WireProtocol[] = ["grpc", "grpc-web", "connect"];

/**
 * Issue 11, item 1: nobody ever receives or shapes a credential that acts as another user, and
 * revocation of others' keys, sessions and tokens follows the role hierarchy UpdateUser uses.
 */
describe("credentials of other users", () => {
  let gw: IdentityServer;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};
  const keys = (who: string, protocol: WireProtocol) => gw.client(ApiKeyService, { token: tokens[who]!, protocol });
  const auth = (who: string, protocol: WireProtocol) => gw.client(AuthService, { token: tokens[who]!, protocol });
  const login = async (who: string) => gw.client(AuthService).login({ username: who, password: testPassword(who) });
  const keyDocument = (id: string) => gw.store.db.collection("api_keys").findOne({ _id: id as never });
  const revocationOf = (id: string) => gw.store.db.collection("api_key_revocations").findOne({ _id: id as never });
  const rotationOf = (id: string) => gw.store.db.collection("api_key_rotations").findOne({ _id: id as never });

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    for (const [name, role] of [
      ["owner-olga", "owner"],
      ["owner-otto", "owner"],
      ["admin-ada", "admin"],
      ["admin-abe", "admin"],
      ["user-uma", "user"],
      ["user-vic", "user"],
    ] as const) {
      ids[name] = (await gw.createUser(name, role))._id;
      tokens[name] = (await login(name)).accessToken;
    }
  });
  afterAll(async () => {
    await gw.close();
  });

  /** Asks `actor` to rotate, update and revoke `owner`'s new key; returns the codes, and checks nothing changed when refused. */
  async function attack(actor: string, owner: string, protocol: WireProtocol) {
    const { apiKey, secret } = await keys(owner, protocol).createApiKey({ name: `${owner}-${protocol}`, scopes: ["ai.status"] });
    const id = apiKey!.id;
    const before = await keyDocument(id);
    const rotate = await codeOf(keys(actor, protocol).rotateApiKey({ keyId: id, gracePeriod: durationFromMs(60_000) }));
    const update = await codeOf(keys(actor, protocol).updateApiKey({ keyId: id, name: "taken over", allowedCidrs: { values: ["203.0.113.0/24"] } }));
    const revoke = await codeOf(keys(actor, protocol).revokeApiKey({ keyId: id, reason: "hostile" }));
    if (rotate !== "ok") expect(await rotationOf(id)).toBeNull();
    if (update !== "ok") expect((await keyDocument(id))?.["name"]).toBe(before?.["name"]);
    if (revoke !== "ok") {
      expect(await revocationOf(id)).toBeNull();
      expect(await codeOf(gw.client(AuthService, { token: secret, protocol }).whoAmI({}))).toBe("ok");
    }
    return { id, secret, rotate, update, revoke };
  }

  it.each(PROTOCOLS)("an admin neither rotates, updates nor revokes an owner's key (%s)", async (protocol) => {
    const result = await attack("admin-ada", "owner-olga", protocol);
    expect([result.rotate, result.update, result.revoke]).toEqual([Code.PermissionDenied, Code.PermissionDenied, Code.PermissionDenied]);
    // Reading stays allowed (and audited): the admin sees the key, so the refusal is not NOT_FOUND.
    expect((await keys("admin-ada", protocol).getApiKey({ keyId: result.id })).apiKey?.status).toBe(ApiKeyStatus.ACTIVE);
    const refusals = await gw.auditEvents("api_key.rotate");
    expect(refusals).toContainEqual(expect.objectContaining({ outcome: "denied", actor: expect.objectContaining({ id: ids["admin-ada"] }), target: { kind: "api_key", id: result.id } }));
  });

  it.each(PROTOCOLS)("an admin neither rotates, updates nor revokes another admin's key (%s)", async (protocol) => {
    const result = await attack("admin-ada", "admin-abe", protocol);
    expect([result.rotate, result.update, result.revoke]).toEqual([Code.PermissionDenied, Code.PermissionDenied, Code.PermissionDenied]);
    for (const type of ["api_key.update", "api_key.revoke"]) {
      expect(await gw.auditEvents(type)).toContainEqual(expect.objectContaining({ outcome: "denied", target: { kind: "api_key", id: result.id } }));
    }
  });

  it.each(PROTOCOLS)("a user cannot even see another user's key (%s)", async (protocol) => {
    const result = await attack("user-uma", "user-vic", protocol);
    expect([result.rotate, result.update, result.revoke]).toEqual([Code.NotFound, Code.NotFound, Code.NotFound]);
  });

  it.each(PROTOCOLS)("an admin may revoke a plain user's key but never rotate or update it; an owner revokes another owner's (%s)", async (protocol) => {
    const onUser = await attack("admin-ada", "user-vic", protocol);
    expect([onUser.rotate, onUser.update, onUser.revoke]).toEqual([Code.PermissionDenied, Code.PermissionDenied, "ok"]);
    expect(await revocationOf(onUser.id)).toMatchObject({ revokedBy: ids["admin-ada"] });
    const onOwner = await attack("owner-otto", "owner-olga", protocol);
    expect([onOwner.rotate, onOwner.update, onOwner.revoke]).toEqual([Code.PermissionDenied, Code.PermissionDenied, "ok"]);
  });

  it.each(PROTOCOLS)("a signed-in caller exchanges only their own keys (%s)", async (protocol) => {
    const { secret } = await keys("owner-olga", protocol).createApiKey({ name: `exchange-${protocol}`, scopes: ["ai.status", "users.manage"] });
    expect(await codeOf(auth("admin-ada", protocol).exchangeApiKey({ apiKey: secret }))).toBe(Code.PermissionDenied);
    expect(await gw.auditEvents("api_key.exchange")).toContainEqual(expect.objectContaining({ outcome: "denied", actor: expect.objectContaining({ id: ids["admin-ada"] }) }));
    // The key's holder, anonymous or signed in as the key's owner, still gets a token of exactly the key's owner.
    for (const client of [gw.client(AuthService, { protocol }), auth("owner-olga", protocol)]) {
      const exchanged = await client.exchangeApiKey({ apiKey: secret, scopes: ["ai.status"] });
      const me = await gw.client(AuthService, { token: exchanged.accessToken, protocol }).whoAmI({});
      expect(me.principal).toMatchObject({ userId: ids["owner-olga"] });
      expect(me.permissions).toEqual(["ai.status"]);
    }
  });

  it.each(PROTOCOLS)("creating a key always makes one of the caller's own (%s)", async (protocol) => {
    const { secret } = await keys("admin-ada", protocol).createApiKey({ name: `own-${protocol}`, scopes: ["ai.status"] });
    const me = await gw.client(AuthService, { token: secret, protocol }).whoAmI({});
    expect(me.principal).toMatchObject({ userId: ids["admin-ada"], role: Role.ADMIN });
  });

  it.each(PROTOCOLS)("session and token revocation follow the same hierarchy (%s)", async (protocol) => {
    const owner = await login("owner-olga");
    const otherAdmin = await login("admin-abe");
    const user = await login("user-uma");
    const admin = auth("admin-ada", protocol);
    expect(await codeOf(admin.revokeSession({ sessionId: owner.sessionId }))).toBe(Code.PermissionDenied);
    expect(await codeOf(admin.revokeSession({ sessionId: otherAdmin.sessionId }))).toBe(Code.PermissionDenied);
    expect(await codeOf(admin.revokeToken({ token: owner.refreshToken }))).toBe(Code.PermissionDenied);
    expect(await codeOf(admin.revokeToken({ token: otherAdmin.accessToken }))).toBe(Code.PermissionDenied);
    expect(await codeOf(gw.client(AuthService, { token: owner.accessToken, protocol }).whoAmI({}))).toBe("ok");
    expect(await codeOf(gw.client(AuthService, { token: otherAdmin.accessToken, protocol }).whoAmI({}))).toBe("ok");
    expect(await gw.auditEvents("auth.session_revoke")).toContainEqual(expect.objectContaining({ outcome: "denied", target: { kind: "session", id: owner.sessionId } }));

    expect((await admin.revokeSession({ sessionId: user.sessionId })).revoked).toBe(true);
    expect((await auth("owner-otto", protocol).revokeSession({ sessionId: otherAdmin.sessionId })).revoked).toBe(true);
    expect((await auth("owner-otto", protocol).revokeToken({ token: owner.refreshToken })).revoked).toBe(true);
    // A user has no say over anyone else's session: NOT_FOUND, as before.
    const another = await login("user-vic");
    expect(await codeOf(auth("user-uma", protocol).revokeSession({ sessionId: another.sessionId }))).toBe(Code.NotFound);
  });
});
