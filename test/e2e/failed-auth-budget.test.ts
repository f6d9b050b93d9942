import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { generateApiKey } from "../../src/domain/api-keys/key-format.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const BUDGET = 3;
type Outcome = "ok" | "unauthenticated" | "exhausted" | string;
const outcomeOf = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    () => "ok",
    (e: unknown) => {
      const error = ConnectError.from(e);
      if (error.code === Code.Unauthenticated) return "unauthenticated";
      if (error.code === Code.ResourceExhausted && error.findDetails(ErrorInfoSchema)[0]?.reason === ErrorReason.RATE_LIMITED) return "exhausted";
      return `${Code[error.code]}:${error.rawMessage}`;
    },
  );

/** Lookups of keys by id: the database work an unknown, well-formed key causes. */
const keyLookups = (gw: IdentityServer, keyId: string) =>
  gw.databaseCommands().filter((c) => c.commandName === "find" && String(c.command["find"]).startsWith("api_key") && JSON.stringify(c.command["filter"]).includes(keyId)).length;

/**
 * Issue 11, item 4: failed authentications spend a per-address budget, checked before any database work;
 * once it is spent, calls presenting credentials from that address get RESOURCE_EXHAUSTED.
 */
describe("failed-authentication budget per client address", () => {
  const dbName = testDatabaseName(import.meta.url);
  // One instance per protocol: the budget is per instance and every test call comes from 127.0.0.1.
  const servers: Partial<Record<WireProtocol, IdentityServer>> = {};
  let token = "";

  beforeAll(async () => {
    for (const protocol of ["grpc", "connect"] as const) {
      servers[protocol] = await startIdentityServer({ dbName, env: { PORTCULLIS_RATE_LIMIT_FAILED_AUTH: String(BUDGET) } });
    }
    await servers.grpc!.createUser("user-fab", "user");
    token = (await servers.grpc!.client(AuthService).login({ username: "user-fab", password: testPassword("user-fab") })).accessToken;
  });
  afterAll(async () => {
    for (const server of Object.values(servers)) await server.close();
  });

  it.each(["grpc", "connect"] as const)("refuses credential stuffing once the address's budget is spent, before any lookup (%s)", async (protocol) => {
    const gw = servers[protocol]!;
    const withKey = (key: string) => outcomeOf(gw.client(AuthService, { token: key, protocol }).whoAmI({}));
    // The right token works before anything failed.
    expect(await outcomeOf(gw.client(AuthService, { token, protocol }).whoAmI({}))).toBe("ok");

    // Well-formed keys that do not exist: each needs a lookup, each fails, each spends the budget.
    const outcomes: Outcome[] = [];
    while (outcomes.length < 10 && outcomes.at(-1) !== "exhausted") outcomes.push(await withKey(generateApiKey("sk").key));
    expect(outcomes.slice(0, BUDGET)).toEqual(Array(BUDGET).fill("unauthenticated"));
    expect(outcomes.at(-1)).toBe("exhausted");

    // Spent: refused before the key is looked up, with a time to retry after.
    const next = generateApiKey("sk");
    const error = await gw
      .client(AuthService, { token: next.key, protocol })
      .whoAmI({})
      .catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    expect(Number((error as ConnectError).findDetails(ErrorInfoSchema)[0]?.retryAfterMs)).toBeGreaterThan(0);
    expect(keyLookups(gw, next.keyId)).toBe(0);
    // Every other way of presenting a secret from this address is refused too…
    expect(await withKey("not-a-jwt")).toBe("exhausted");
    expect(await outcomeOf(gw.client(AuthService, { protocol }).login({ username: "user-fab", password: "a-wrong-guess-again" }))).toBe("exhausted");
    expect(await outcomeOf(gw.client(AuthService, { protocol }).exchangeApiKey({ apiKey: generateApiKey("sk").key }))).toBe("exhausted");
    // …while calls that present nothing still pass.
    expect(await outcomeOf(gw.client(AuthService, { protocol }).getJwks({}))).toBe("ok");
  });
});
