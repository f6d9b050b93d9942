import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { ApiKeyService, RateLimitTier } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok" as const,
    (e: unknown) => ConnectError.from(e).code,
  );
const PROTOCOLS: readonly WireProtocol[] = ["grpc", "connect"];

/** Issue 11, item 7: a bigger rate-limit budget is a privilege, not self-service. */
describe("API key rate-limit tiers", () => {
  const dbName = testDatabaseName(import.meta.url);
  let gw: IdentityServer;
  let generous: IdentityServer;
  const tokens: Record<string, string> = {};
  const keys = (who: string, protocol: WireProtocol, server = gw) => server.client(ApiKeyService, { token: tokens[who]!, protocol });

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName });
    // A second instance on the same database whose policy lets everyone pick premium.
    generous = await startIdentityServer({ dbName, env: { PORTCULLIS_API_KEY_SELF_SERVICE_TIER: "premium" } });
    for (const [name, role] of [
      ["admin-tia", "admin"],
      ["user-tom", "user"],
    ] as const) {
      await gw.createUser(name, role);
      tokens[name] = (await gw.client(AuthService).login({ username: name, password: testPassword(name) })).accessToken;
    }
  });
  afterAll(async () => {
    await generous?.close();
    await gw?.close();
  });

  it.each(PROTOCOLS)("a plain user gets basic or standard, never premium, on create or update (%s)", async (protocol) => {
    const before = await gw.store.db.collection("api_keys").countDocuments();
    expect(await codeOf(keys("user-tom", protocol).createApiKey({ name: "greedy", scopes: ["ai.query"], rateLimitTier: RateLimitTier.PREMIUM }))).toBe(Code.PermissionDenied);
    expect(await gw.store.db.collection("api_keys").countDocuments()).toBe(before);
    const basic = await keys("user-tom", protocol).createApiKey({ name: "modest", scopes: ["ai.query"], rateLimitTier: RateLimitTier.BASIC });
    expect(await codeOf(keys("user-tom", protocol).updateApiKey({ keyId: basic.apiKey!.id, rateLimitTier: RateLimitTier.PREMIUM }))).toBe(Code.PermissionDenied);
    expect((await keys("user-tom", protocol).getApiKey({ keyId: basic.apiKey!.id })).apiKey!.rateLimitTier).toBe(RateLimitTier.BASIC);
    const standard = await keys("user-tom", protocol).updateApiKey({ keyId: basic.apiKey!.id, rateLimitTier: RateLimitTier.STANDARD });
    expect(standard.apiKey!.rateLimitTier).toBe(RateLimitTier.STANDARD);
  });

  it.each(PROTOCOLS)("users.manage may assign premium (%s)", async (protocol) => {
    const created = await keys("admin-tia", protocol).createApiKey({ name: "bulk", scopes: ["ai.query"], rateLimitTier: RateLimitTier.PREMIUM });
    expect(created.apiKey!.rateLimitTier).toBe(RateLimitTier.PREMIUM);
    const other = await keys("admin-tia", protocol).createApiKey({ name: "bulk-2", scopes: ["ai.query"] });
    expect((await keys("admin-tia", protocol).updateApiKey({ keyId: other.apiKey!.id, rateLimitTier: RateLimitTier.PREMIUM })).apiKey!.rateLimitTier).toBe(RateLimitTier.PREMIUM);
  });

  it.each(PROTOCOLS)("a configured self-service tier lets plain users pick it (%s)", async (protocol) => {
    const created = await keys("user-tom", protocol, generous).createApiKey({ name: "allowed", scopes: ["ai.query"], rateLimitTier: RateLimitTier.PREMIUM });
    expect(created.apiKey!.rateLimitTier).toBe(RateLimitTier.PREMIUM);
  });
});
