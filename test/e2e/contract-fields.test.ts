import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { AuthService, TokenType } from "../../gen/portcullis/v1/auth_pb.js";
import { PrincipalKind } from "../../gen/portcullis/v1/common_pb.js";
import { userWithToken } from "../helpers/audit.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const PROTOCOLS: readonly WireProtocol[] = ["grpc", "grpc-web", "connect"];
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e).code,
  );
const INT32_MAX = 2_147_483_647;
// Revocations reach other instances within a second; the deadline is generous for a loaded machine.
const ACROSS_INSTANCES = { timeout: 10_000, interval: 50 };

/**
 * Fields and semantics exactly as the proto comments promise them, over each of the three protocols:
 * every case here once answered differently from its comment.
 */
describe("the contract, field by field", () => {
  let gw: IdentityServer;
  let other: IdentityServer;
  let admin: Awaited<ReturnType<typeof userWithToken>>;
  let bulk: Awaited<ReturnType<typeof userWithToken>>;

  beforeAll(async () => {
    const dbName = testDatabaseName(import.meta.url);
    const env = { PORTCULLIS_RATE_LIMIT_DEFAULT: "100000", PORTCULLIS_RATE_LIMIT_CREDENTIAL: "10000" };
    gw = await startIdentityServer({ dbName, env });
    other = await startIdentityServer({ dbName, env }); // a second instance on the same database
    admin = await userWithToken(gw, "contract-admin", "admin");
    bulk = await userWithToken(gw, "contract-bulk", "user");
  });
  afterAll(async () => {
    await other?.close();
    await gw?.close();
  });

  const login = (username: string) => gw.client(AuthService).login({ username, password: testPassword(username) });
  const whoAmIOn = (server: IdentityServer, token: string) => codeOf(server.client(AuthService, { token }).whoAmI({})).then((code) => code ?? "ok");

  describe.each(PROTOCOLS)("API key metadata keys over %s", (protocol) => {
    it("refuses keys with '.' or a leading '$' (they would be MongoDB paths or operators) with INVALID_ARGUMENT, storing nothing", async () => {
      const keys = gw.client(ApiKeyService, { token: admin.token, protocol });
      const created = await keys.createApiKey({ name: `meta-${protocol}`, scopes: ["ai.status"], metadata: { team: "blue", "ci:job/id-1_x": "7" } });
      expect(created.apiKey?.metadata).toEqual({ team: "blue", "ci:job/id-1_x": "7" });
      const keyId = created.apiKey!.id;
      const before = await gw.store.db.collection("api_keys").countDocuments();
      for (const metadata of [{ "a.b": "x" }, { ".": "x" }, { "x.": "x" }, { $where: "x" }, { $set: "x" }, { "a.$b": "x" }, { "": "x" }, { ["k".repeat(65)]: "x" }] as Array<Record<string, string>>) {
        expect(await codeOf(keys.createApiKey({ name: "bad-meta", scopes: ["ai.status"], metadata })), JSON.stringify(metadata)).toBe(Code.InvalidArgument);
        expect(await codeOf(keys.updateApiKey({ keyId, metadata: { entries: metadata } })), JSON.stringify(metadata)).toBe(Code.InvalidArgument);
      }
      expect(await gw.store.db.collection("api_keys").countDocuments()).toBe(before);
      expect((await keys.getApiKey({ keyId })).apiKey?.metadata).toEqual({ team: "blue", "ci:job/id-1_x": "7" });
    });
  });

  describe("page_size: clamped above the maximum, refused below zero (common.proto)", () => {
    beforeAll(async () => {
      // More than one maximal page of everything, written straight into the database (as many
      // instances would have over time): users, one user's API keys and sessions, audit events.
      const users = gw.store.db.collection<Record<string, unknown> & { _id: string }>("users");
      const template = (await users.findOne({ _id: bulk.userId }))!;
      await users.insertMany(Array.from({ length: 505 }, (_, i) => ({ ...template, _id: randomUUID(), username: `bulk-${i}`, usernameKey: `bulk-${i}` })));
      const keysStore = gw.store.db.collection<Record<string, unknown> & { _id: string }>("api_keys");
      const created = await gw.client(ApiKeyService, { token: bulk.token }).createApiKey({ name: "bulk-0", scopes: ["ai.status"] });
      const key = (await keysStore.findOne({ _id: created.apiKey!.id }))!;
      await keysStore.insertMany(Array.from({ length: 505 }, (_, i) => ({ ...key, _id: randomBytes(12).toString("base64url").replace(/[-_]/g, "0").slice(0, 16), name: `bulk-${i + 1}` })));
      const sessions = gw.store.db.collection<Record<string, unknown> & { _id: string }>("sessions");
      const session = (await sessions.findOne({ _id: bulk.sessionId }))!;
      await sessions.insertMany(Array.from({ length: 505 }, () => ({ ...session, _id: randomUUID() })));
      for (let i = 0; i < 1005; i++) {
        gw.audit.record({ type: "test.bulk", outcome: "success", actor: { kind: "user", id: bulk.userId, display: "contract-bulk" } });
      }
      await gw.audit.flush();
    });

    it.each(PROTOCOLS)("ListUsers, ListApiKeys, ListSessions, QueryAuditEvents and ListMyAuditEvents over %s", async (protocol) => {
      const auth = gw.client(AuthService, { token: admin.token, protocol });
      const mine = gw.client(AuthService, { token: bulk.token, protocol });
      const keys = gw.client(ApiKeyService, { token: bulk.token, protocol });
      const audit = gw.client(AuditService, { token: admin.token, protocol });
      const myAudit = gw.client(AuditService, { token: bulk.token, protocol });
      // Just above the maximum on one protocol, the largest int32 on every one.
      const sizes = protocol === "grpc" ? [0, INT32_MAX] : [INT32_MAX];
      for (const extra of sizes) {
        const pageSize = extra === 0 ? 501 : extra;
        const users = await auth.listUsers({ pageSize });
        expect([users.users.length, users.nextPageToken !== ""]).toEqual([500, true]);
        const apiKeys = await keys.listApiKeys({ pageSize });
        expect([apiKeys.apiKeys.length, apiKeys.nextPageToken !== ""]).toEqual([500, true]);
        const sessions = await mine.listSessions({ pageSize });
        expect([sessions.sessions.length, sessions.nextPageToken !== ""]).toEqual([500, true]);
        const auditSize = extra === 0 ? 1001 : extra;
        const events = await audit.queryAuditEvents({ pageSize: auditSize, filter: { types: ["test.bulk"] } });
        expect([events.events.length, events.nextPageToken !== ""]).toEqual([1000, true]);
        const own = await myAudit.listMyAuditEvents({ pageSize: auditSize });
        expect([own.events.length, own.nextPageToken !== ""]).toEqual([1000, true]);
      }
      if (protocol === "grpc") {
        // The next page continues where the clamped one ended.
        const first = await keys.listApiKeys({ pageSize: INT32_MAX });
        const second = await keys.listApiKeys({ pageSize: INT32_MAX, pageToken: first.nextPageToken });
        expect(second.apiKeys).toHaveLength(6);
        expect(new Set([...first.apiKeys, ...second.apiKeys].map((k) => k.id)).size).toBe(506);
      }

      for (const call of [
        () => auth.listUsers({ pageSize: -1 }),
        () => keys.listApiKeys({ pageSize: -1 }),
        () => mine.listSessions({ pageSize: -1 }),
        () => audit.queryAuditEvents({ pageSize: -1 }),
        () => myAudit.listMyAuditEvents({ pageSize: -1 }),
      ]) {
        expect(await codeOf(call())).toBe(Code.InvalidArgument);
      }
    });
  });

  describe.each(PROTOCOLS)("credentials describe themselves over %s", (protocol) => {
    let key: { id: string; secret: string; name: string };
    beforeAll(async () => {
      const name = `whoami-${protocol}`;
      const created = await gw.client(ApiKeyService, { token: admin.token, protocol }).createApiKey({ name, scopes: ["ai.status", "keys.read"] });
      key = { id: created.apiKey!.id, secret: created.secret, name };
    });

    it("WhoAmI names an API key by the key's name, and a user by the username", async () => {
      const viaKey = await gw.client(AuthService, { token: key.secret, protocol }).whoAmI({});
      expect(viaKey.principal).toMatchObject({ kind: PrincipalKind.API_KEY, id: key.id, displayName: key.name, userId: admin.userId });
      expect(viaKey.user?.username).toBe("contract-admin");
      const exchanged = await gw.client(AuthService, { protocol }).exchangeApiKey({ apiKey: key.secret });
      const viaExchanged = await gw.client(AuthService, { token: exchanged.accessToken, protocol }).whoAmI({});
      expect(viaExchanged.principal).toMatchObject({ kind: PrincipalKind.API_KEY, id: key.id, displayName: key.name });
      const viaToken = await gw.client(AuthService, { token: admin.token, protocol }).whoAmI({});
      expect(viaToken.principal).toMatchObject({ kind: PrincipalKind.USER, id: admin.userId, displayName: "contract-admin" });
    });

    it("GetTokenInfo({}) describes the access token of the call itself; with an API key there is none", async () => {
      const session = await login("contract-admin");
      const own = await gw.client(AuthService, { token: session.accessToken, protocol }).getTokenInfo({});
      const explicit = await gw.client(AuthService, { token: admin.token, protocol }).getTokenInfo({ token: session.accessToken });
      expect(own).toEqual(explicit);
      expect(own).toMatchObject({ active: true, tokenType: TokenType.ACCESS, subject: admin.userId, sessionId: session.sessionId, username: "contract-admin", apiKeyId: "" });
      expect(own.tokenId).not.toBe("");

      const exchanged = await gw.client(AuthService, { protocol }).exchangeApiKey({ apiKey: key.secret, scopes: ["ai.status"] });
      const ofExchanged = await gw.client(AuthService, { token: exchanged.accessToken, protocol }).getTokenInfo({});
      // An exchanged token belongs to no session (the proto: session_id empty), and carries the key.
      expect(ofExchanged).toMatchObject({ active: true, tokenType: TokenType.ACCESS, subject: admin.userId, sessionId: "", apiKeyId: key.id, permissions: ["ai.status"] });

      expect(await codeOf(gw.client(AuthService, { token: key.secret, protocol }).getTokenInfo({}))).toBe(Code.FailedPrecondition);
      expect(await codeOf(gw.client(AuthService, { protocol }).getTokenInfo({}, { headers: { "x-api-key": key.secret } }))).toBe(Code.FailedPrecondition);
    });

    it("RevokeToken with an access token ends its whole session: the refresh token and every access token, on every instance", async () => {
      const session = await login("contract-admin");
      const refreshed = await gw.client(AuthService).refresh({ refreshToken: session.refreshToken });
      expect(await whoAmIOn(other, session.accessToken)).toBe("ok");
      const result = await gw.client(AuthService, { token: admin.token, protocol }).revokeToken({ token: session.accessToken });
      expect(result).toEqual(expect.objectContaining({ revoked: true, tokenType: TokenType.ACCESS }));
      for (const token of [session.accessToken, refreshed.accessToken]) {
        expect(await whoAmIOn(gw, token)).toBe(Code.Unauthenticated);
        await expect.poll(() => whoAmIOn(other, token), ACROSS_INSTANCES).toBe(Code.Unauthenticated);
      }
      expect(await codeOf(gw.client(AuthService).refresh({ refreshToken: refreshed.refreshToken }))).toBe(Code.Unauthenticated);
      expect(await gw.client(AuthService, { token: admin.token, protocol }).revokeToken({ token: session.accessToken })).toMatchObject({ revoked: false });
    });

    it("RevokeToken with a refresh token ends its whole session too; a refresh token already used revokes nothing", async () => {
      const session = await login("contract-admin");
      const refreshed = await gw.client(AuthService).refresh({ refreshToken: session.refreshToken });
      const auth = gw.client(AuthService, { token: admin.token, protocol });
      // The first refresh token was exchanged: it is inactive, and revoking it leaves the session alone.
      expect(await auth.getTokenInfo({ token: session.refreshToken })).toMatchObject({ active: false });
      expect(await auth.revokeToken({ token: session.refreshToken })).toMatchObject({ revoked: false, tokenType: TokenType.UNSPECIFIED });
      expect(await whoAmIOn(gw, refreshed.accessToken)).toBe("ok");

      expect(await auth.revokeToken({ token: refreshed.refreshToken })).toMatchObject({ revoked: true, tokenType: TokenType.REFRESH });
      for (const token of [session.accessToken, refreshed.accessToken]) {
        expect(await whoAmIOn(gw, token)).toBe(Code.Unauthenticated);
        await expect.poll(() => whoAmIOn(other, token), ACROSS_INSTANCES).toBe(Code.Unauthenticated);
      }
      expect(await codeOf(gw.client(AuthService).refresh({ refreshToken: refreshed.refreshToken }))).toBe(Code.Unauthenticated);
    });

    it("RevokeToken with an exchanged API-key token revokes that token alone, on every instance; the key keeps working", async () => {
      const anonymous = gw.client(AuthService, { protocol });
      const first = await anonymous.exchangeApiKey({ apiKey: key.secret });
      const second = await anonymous.exchangeApiKey({ apiKey: key.secret });
      expect(await whoAmIOn(other, first.accessToken)).toBe("ok");
      const result = await gw.client(AuthService, { token: admin.token, protocol }).revokeToken({ token: first.accessToken });
      expect(result).toMatchObject({ revoked: true, tokenType: TokenType.ACCESS });
      expect(await whoAmIOn(gw, first.accessToken)).toBe(Code.Unauthenticated);
      await expect.poll(() => whoAmIOn(other, first.accessToken), ACROSS_INSTANCES).toBe(Code.Unauthenticated);
      for (const server of [gw, other]) {
        expect(await whoAmIOn(server, second.accessToken)).toBe("ok");
        expect(await whoAmIOn(server, key.secret)).toBe("ok");
      }
      expect(await gw.client(AuthService, { token: admin.token, protocol }).revokeToken({ token: first.accessToken })).toMatchObject({ revoked: false });
    });
  });
});
