import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { AuthService, LogoutScope } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { createRateLimiter } from "../../src/access/rate-limiter.ts";
import { createInterceptorChain } from "../../src/interceptors/chain.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

/**
 * Streams are not a way around revocation. The first real authenticated streams arrive with later
 * services; until then a stand-in handler that streams forever runs behind the real interceptor chain
 * and the real identity layer (a second instance, B, where the revocation happens on A).
 */
describe("open server streams end when their principal is revoked", () => {
  let a: IdentityServer;
  let b: IdentityServer;

  /** A WatchAuditEvents stand-in on instance B: a heartbeat every 50 ms until cancelled. */
  const streamingClientOnB = () => {
    const transport = createRouterTransport(
      (router) => {
        router.service(AuditService, {
          async *watchAuditEvents(_req, ctx) {
            while (!ctx.signal.aborted) {
              yield { payload: { case: "heartbeat" as const, value: {} } };
              await new Promise((resolve) => setTimeout(resolve, 50));
            }
          },
        });
      },
      {
        router: {
          interceptors: createInterceptorChain({
            logger: pino({ level: "silent" }),
            authenticator: b.gateway.serverDeps.authenticator,
            freshMfa: b.gateway.serverDeps.freshMfa,
            rateLimiter: createRateLimiter({ default: 1000, credential: 1000, expensive: 1000, admin: 1000, infrastructure: 1000 }),
          }),
        },
      },
    );
    return createClient(AuditService, transport);
  };

  /** Opens the stream with `token`, then runs `revoke`; resolves with the stream's end and its delay. */
  const watchThen = async (token: string, revoke: () => Promise<unknown>) => {
    const headers = token.startsWith("sk_") ? { "x-api-key": token } : { authorization: `Bearer ${token}` };
    const stream = streamingClientOnB().watchAuditEvents({}, { headers });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false); // open and flowing
    await revoke();
    const revokedAt = Date.now();
    try {
      for (;;) if ((await iterator.next()).done) return { code: "ended normally", afterMs: Date.now() - revokedAt };
    } catch (error) {
      return { code: ConnectError.from(error).code, afterMs: Date.now() - revokedAt };
    }
  };

  const login = async (username: string) => a.client(AuthService).login({ username, password: testPassword(username) });
  let ownerToken = "";
  const userId = async (username: string) => (await a.client(AuthService, { token: ownerToken }).listUsers({ pageSize: 500 })).users.find((u) => u.username === username)!.id;

  beforeAll(async () => {
    const dbName = testDatabaseName(import.meta.url);
    a = await startIdentityServer({ dbName });
    b = await startIdentityServer({ dbName });
    await a.createUser("root", "owner");
    await a.createUser("auditor", "admin");
    await a.createUser("auditor2", "admin");
    await a.createUser("auditor3", "admin");
    ownerToken = (await login("root")).accessToken;
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it("on logout (session revoked) — UNAUTHENTICATED within 1 s", async () => {
    const { accessToken } = await login("auditor");
    const end = await watchThen(accessToken, () => a.client(AuthService, { token: accessToken }).logout({ scope: LogoutScope.CURRENT_SESSION }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);
  });

  it("when the user is demoted below the method's permission — UNAUTHENTICATED within 1 s", async () => {
    const { accessToken } = await login("auditor2");
    const id = await userId("auditor2");
    const end = await watchThen(accessToken, () => a.client(AuthService, { token: ownerToken }).updateUser({ userId: id, role: Role.USER }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);
  });

  it("when the user is disabled — UNAUTHENTICATED within 1 s", async () => {
    const { accessToken } = await login("auditor");
    const id = await userId("auditor");
    const end = await watchThen(accessToken, () => a.client(AuthService, { token: ownerToken }).updateUser({ userId: id, disabled: true }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);
  });

  it("when its API key is revoked, or narrowed below the method — UNAUTHENTICATED within 1 s", async () => {
    const { accessToken } = await login("auditor3");
    const keys = a.client(ApiKeyService, { token: accessToken });
    const revoked = await keys.createApiKey({ name: "tail", scopes: ["audit.read"] });
    let end = await watchThen(revoked.secret, () => keys.revokeApiKey({ keyId: revoked.apiKey!.id, reason: "stream test" }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);

    const narrowed = await keys.createApiKey({ name: "tail-2", scopes: ["audit.read", "ai.status"] });
    end = await watchThen(narrowed.secret, () => keys.updateApiKey({ keyId: narrowed.apiKey!.id, scopes: { values: ["ai.status"] } }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);
  });

  it("when an API key's owner is disabled — UNAUTHENTICATED within 1 s", async () => {
    const { accessToken } = await login("auditor3");
    const key = await a.client(ApiKeyService, { token: accessToken }).createApiKey({ name: "tail-3", scopes: ["audit.read"] });
    const id = await userId("auditor3");
    const end = await watchThen(key.secret, () => a.client(AuthService, { token: ownerToken }).updateUser({ userId: id, disabled: true }));
    expect(end.code).toBe(Code.Unauthenticated);
    expect(end.afterMs).toBeLessThan(1_000);
  });
});
