import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { createGrpcJsClient } from "../../clients/grpc-js.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

/** Lookups of keys by id: the only database reads a presented key can cause. */
const keyLookups = (gw: IdentityServer) =>
  gw
    .databaseCommands()
    .filter((c) => c.commandName === "find" && ["api_keys", "api_key_revocations", "api_key_rotations"].includes(String(c.command["find"])) && JSON.stringify(c.command["filter"]).includes('"_id"'));

describe("API keys: bad input", () => {
  let gw: IdentityServer;
  let secret = "";
  let keyId = "";
  let token = "";

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("uma", "user");
    token = (await gw.client(AuthService).login({ username: "uma", password: testPassword("uma") })).accessToken;
    const created = await gw.client(ApiKeyService, { token }).createApiKey({ name: "real", scopes: ["ai.status"] });
    secret = created.secret;
    keyId = created.apiKey!.id;
  });
  afterAll(async () => {
    await gw.close();
  });

  const whoAmIWith = (headers: Record<string, string> | { [name: string]: string | undefined }) =>
    gw
      .client(AuthService)
      .whoAmI({}, { headers: headers as Record<string, string> })
      .then(
        () => "ok" as const,
        (e: unknown) => ConnectError.from(e),
      );

  it("refuses malformed keys with UNAUTHENTICATED before any database lookup", async () => {
    const flipped = secret.slice(0, -1) + (secret.endsWith("A") ? "B" : "A");
    const malformed = [
      `pk${secret.slice(2)}`, // wrong prefix (with the key prefix nowhere: treated as a JWT, still refused)
      `sk_${secret.slice(3, 10)}`, // truncated
      secret.slice(0, -7), // checksum cut off
      flipped, // bad checksum
      secret.replace(/_/g, "-"),
      `sk_${"A".repeat(10_000)}`, // 10 KB
      `${secret.slice(0, 20)}é${secret.slice(21)}`, // non-ASCII
      `${secret.slice(0, 20)}\u0000${secret.slice(21)}`, // control character
      `${secret.slice(0, 20)}\t${secret.slice(21)}`,
      "sk_",
    ];
    await new Promise((resolve) => setTimeout(resolve, 300)); // let start-up reads settle
    const before = keyLookups(gw).length;
    for (const value of malformed) {
      for (const headers of [{ "x-api-key": value }, { authorization: `Bearer ${value}` }]) {
        const result = await whoAmIWith(headers);
        // Some values cannot even be sent as an HTTP header value by the client: nothing to test there.
        if (result instanceof ConnectError && result.code === Code.Unknown && /invalid header value/.test(result.message)) continue;
        expect(result, JSON.stringify(value.slice(0, 40))).toBeInstanceOf(ConnectError);
        expect((result as ConnectError).code, `${JSON.stringify(value.slice(0, 30))} ${(result as ConnectError).message}`).toBe(Code.Unauthenticated);
        if (value.length > 20) expect((result as ConnectError).rawMessage).not.toContain(value.slice(3, 20));
      }
    }
    expect(keyLookups(gw).length).toBe(before);
    // The counter does see lookups: a well-formed key this instance has not cached is looked up once,
    // and then remembered as unknown for a while.
    const { generateApiKey } = await import("../../src/domain/api-keys/key-format.ts");
    const unknown = generateApiKey("sk").key;
    expect(((await whoAmIWith({ "x-api-key": unknown })) as ConnectError).code).toBe(Code.Unauthenticated);
    const afterOne = keyLookups(gw).length;
    expect(afterOne).toBeGreaterThan(before);
    expect(((await whoAmIWith({ "x-api-key": unknown })) as ConnectError).code).toBe(Code.Unauthenticated);
    expect(keyLookups(gw).length).toBe(afterOne);
  });

  it("refuses a well-formed key with the wrong secret, audited, leaving the key unchanged", async () => {
    const stored = await gw.store.db.collection("api_keys").findOne({ _id: keyId as never });
    // Same id, another secret with a valid checksum: only the HMAC comparison can refuse it.
    const { generateApiKey } = await import("../../src/domain/api-keys/key-format.ts");
    const forged = generateApiKey("sk", keyId).key;
    const result = await whoAmIWith({ authorization: `Bearer ${forged}` });
    expect((result as ConnectError).code).toBe(Code.Unauthenticated);
    expect((result as ConnectError).rawMessage).toBe("invalid credentials");
    expect(await gw.store.db.collection("api_keys").findOne({ _id: keyId as never })).toEqual(stored);
    await gw.audit.flush();
    const events = await gw.auditEvents("api_key.authenticate");
    expect(events.some((e) => e["reason"] === "wrong_secret" && (e["target"] as { id: string }).id === keyId)).toBe(true);
    expect(JSON.stringify(events)).not.toContain(forged.slice(20));
  });

  it("refuses both credentials at once, and $-operators or control characters in every key string field", async () => {
    const both = await whoAmIWith({ "x-api-key": secret, authorization: `Bearer ${token}` });
    expect((both as ConnectError).code).toBe(Code.Unauthenticated);
    const keys = gw.client(ApiKeyService, { token });
    const before = await gw.store.db.collection("api_keys").countDocuments();
    const code = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => ConnectError.from(e).code,
      );
    expect(await code(keys.createApiKey({ name: "$where", scopes: ["$ne"] }))).toBe(Code.InvalidArgument);
    expect(await code(keys.createApiKey({ name: "a\u0000b", scopes: ["ai.status"] }))).toBe(Code.InvalidArgument);
    expect(await code(keys.createApiKey({ name: "ok", scopes: ["ai.status"], metadata: { "a.b$c": "x" } }))).toBe(Code.InvalidArgument);
    expect(await code(keys.getApiKey({ keyId: "$gt" }))).toBe(Code.NotFound);
    expect(await code(keys.listApiKeys({ userId: '{"$ne":null}' }))).toBe(Code.PermissionDenied);
    expect(await code(keys.revokeApiKey({ keyId, reason: "x".repeat(501) }))).toBe(Code.InvalidArgument);
    expect(await gw.store.db.collection("api_keys").countDocuments()).toBe(before);
    expect(await gw.store.db.collection("api_key_revocations").countDocuments()).toBe(0);
  });

  it("accepts keys from @grpc/grpc-js clients as x-api-key metadata", async () => {
    const client = createGrpcJsClient(AuthService, `127.0.0.1:${gw.port}`);
    try {
      const me = await client.whoAmI({}, { metadata: { "x-api-key": secret } });
      expect(me.permissions).toEqual(["ai.status"]);
      await expect(client.whoAmI({}, { metadata: { "x-api-key": secret.slice(0, -1) } })).rejects.toMatchObject({ code: Code.Unauthenticated });
    } finally {
      client.close();
    }
  });
});
