import { Code, ConnectError } from "@connectrpc/connect";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const WITHIN = { timeout: 1_000, interval: 50 };

/** Two gateway instances on one database: what one does to a key, the other honours within a second. */
describe("API keys across two server instances", () => {
  let a: IdentityServer;
  let b: IdentityServer;
  let dbName: string;
  let userToken = "";
  let ownerToken = "";
  let userId = "";
  const keysOnA = () => a.client(ApiKeyService, { token: userToken });
  const onB = (key: string) =>
    b
      .client(AuthService, { token: key })
      .whoAmI({})
      .then(
        (me) => me.permissions.join(" "),
        (e: unknown) => ConnectError.from(e).code,
      );

  beforeAll(async () => {
    dbName = testDatabaseName(import.meta.url);
    a = await startIdentityServer({ dbName });
    b = await startIdentityServer({ dbName });
    await a.createUser("olga", "owner");
    userId = (await a.createUser("uma", "user"))._id;
    userToken = (await a.client(AuthService).login({ username: "uma", password: testPassword("uma") })).accessToken;
    ownerToken = (await a.client(AuthService).login({ username: "olga", password: testPassword("olga") })).accessToken;
  });
  afterAll(async () => {
    await a.close();
    await b?.close();
  });

  it("a key created on A works on B; revoking it on A stops it on B within 1 second", async () => {
    const { apiKey, secret } = await keysOnA().createApiKey({ name: "shared", scopes: ["ai.status", "keys.read"] });
    expect(await onB(secret)).toBe("ai.status keys.read");
    await keysOnA().revokeApiKey({ keyId: apiKey!.id, reason: "two-instance test" });
    await expect.poll(() => onB(secret), WITHIN).toBe(Code.Unauthenticated);
  });

  it("rotation on A: B refuses the old key and accepts the new one within 1 second", async () => {
    const { apiKey, secret } = await keysOnA().createApiKey({ name: "rotated", scopes: ["ai.status"] });
    expect(await onB(secret)).toBe("ai.status");
    const rotated = await keysOnA().rotateApiKey({ keyId: apiKey!.id });
    await expect.poll(() => onB(secret), WITHIN).toBe(Code.Unauthenticated);
    expect(await onB(rotated.secret)).toBe("ai.status");
  });

  it("narrowing scopes on A narrows the key on B within 1 second", async () => {
    const { apiKey, secret } = await keysOnA().createApiKey({ name: "narrowed", scopes: ["ai.status", "keys.read"] });
    expect(await onB(secret)).toBe("ai.status keys.read");
    await keysOnA().updateApiKey({ keyId: apiKey!.id, scopes: { values: ["ai.status"] } });
    await expect.poll(() => onB(secret), WITHIN).toBe("ai.status");
  });

  it("expiry is checked on every use, on every instance", async () => {
    const { secret } = await keysOnA().createApiKey({ name: "brief", scopes: ["ai.status"], expiresIn: durationFromMs(1_000) });
    expect(await onB(secret)).toBe("ai.status");
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(await onB(secret)).toBe(Code.Unauthenticated);
  });

  it("usage counted on B survives B's graceful stop and is what A reports", async () => {
    const { apiKey, secret } = await keysOnA().createApiKey({ name: "counted", scopes: ["ai.status"] });
    for (let i = 0; i < 5; i++) expect(await onB(secret)).toBe("ai.status");
    await b.close(); // flushes usage held in memory
    const key = (await keysOnA().getApiKey({ keyId: apiKey!.id })).apiKey!;
    expect(key.usageCount).toBe(5n);
    expect(key.lastUsedIp).toMatch(/127\.0\.0\.1/);
    b = await startIdentityServer({ dbName });
  });

  it("disabling the owner on A stops the key on B within 1 second", async () => {
    const { secret } = await keysOnA().createApiKey({ name: "owner-gone", scopes: ["ai.status"] });
    expect(await onB(secret)).toBe("ai.status");
    await a.client(AuthService, { token: ownerToken }).updateUser({ userId, disabled: true });
    await expect.poll(() => onB(secret), WITHIN).toBe(Code.Unauthenticated);
  });
});
