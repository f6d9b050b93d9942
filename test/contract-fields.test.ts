import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../clients/connect-node.ts";
import { ApiKeyService } from "../gen/portcullis/v1/api_key_pb.js";
import { AuditService } from "../gen/portcullis/v1/audit_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { userWithToken } from "./helpers/audit.ts";
import { testDatabaseName } from "./helpers/database.ts";
import { startIdentityServer, type IdentityServer } from "./helpers/identity-server.ts";

const PROTOCOLS: readonly WireProtocol[] = ["grpc", "grpc-web", "connect"];
const codeOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e).code);
const INT32_MAX = 2_147_483_647;

/**
 * Fields and semantics exactly as the proto comments promise them, over each of the three protocols:
 * every case here once answered differently from its comment.
 */
describe("the contract, field by field", () => {
  let gw: IdentityServer;
  let admin: Awaited<ReturnType<typeof userWithToken>>;
  let bulk: Awaited<ReturnType<typeof userWithToken>>;

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_DEFAULT: "100000", PORTCULLIS_RATE_LIMIT_CREDENTIAL: "10000" } });
    admin = await userWithToken(gw, "contract-admin", "admin");
    bulk = await userWithToken(gw, "contract-bulk", "user");
  });
  afterAll(async () => {
    await gw?.close();
  });

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
      await users.insertMany(
        Array.from({ length: 505 }, (_, i) => ({ ...template, _id: randomUUID(), username: `bulk-${i}`, usernameKey: `bulk-${i}` })),
      );
      const keysStore = gw.store.db.collection<Record<string, unknown> & { _id: string }>("api_keys");
      const created = await gw.client(ApiKeyService, { token: bulk.token }).createApiKey({ name: "bulk-0", scopes: ["ai.status"] });
      const key = (await keysStore.findOne({ _id: created.apiKey!.id }))!;
      await keysStore.insertMany(
        Array.from({ length: 505 }, (_, i) => ({ ...key, _id: randomBytes(12).toString("base64url").replace(/[-_]/g, "0").slice(0, 16), name: `bulk-${i + 1}` })),
      );
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
      for (const pageSize of [501, INT32_MAX]) {
        const users = await auth.listUsers({ pageSize });
        expect([users.users.length, users.nextPageToken !== ""]).toEqual([500, true]);
        const apiKeys = await keys.listApiKeys({ pageSize });
        expect([apiKeys.apiKeys.length, apiKeys.nextPageToken !== ""]).toEqual([500, true]);
        const sessions = await mine.listSessions({ pageSize });
        expect([sessions.sessions.length, sessions.nextPageToken !== ""]).toEqual([500, true]);
      }
      for (const pageSize of [1001, INT32_MAX]) {
        const events = await audit.queryAuditEvents({ pageSize, filter: { types: ["test.bulk"] } });
        expect([events.events.length, events.nextPageToken !== ""]).toEqual([1000, true]);
        const own = await myAudit.listMyAuditEvents({ pageSize });
        expect([own.events.length, own.nextPageToken !== ""]).toEqual([1000, true]);
      }
      // The next page continues where the clamped one ended.
      const first = await keys.listApiKeys({ pageSize: INT32_MAX });
      const second = await keys.listApiKeys({ pageSize: INT32_MAX, pageToken: first.nextPageToken });
      expect(second.apiKeys).toHaveLength(6);
      expect(new Set([...first.apiKeys, ...second.apiKeys].map((k) => k.id)).size).toBe(506);

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
});
