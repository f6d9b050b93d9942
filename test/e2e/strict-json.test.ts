import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";
import { envelope } from "../helpers/raw-protocol.ts";
import { probeRpc } from "../helpers/raw-rpc.ts";

const LIST_USERS = "/portcullis.v1.AuthService/ListUsers";

// The case: a filter with a typo must not turn into "no filter" and list everyone.
describe("JSON requests with unknown fields or enum names are refused on the real API", () => {
  let gw: IdentityServer;
  let adminToken: string;
  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("jason-owner", "owner");
    await gw.createUser("jason-admin", "admin");
    await gw.createUser("jason-user", "user");
    adminToken = (await gw.client(AuthService).login({ username: "jason-admin", password: testPassword("jason-admin") })).accessToken;
  });
  afterAll(async () => {
    await gw.close();
  });

  /** ListUsers with a JSON body, by Connect (fetch) and by gRPC / gRPC-Web with `+json` (raw). */
  async function listUsers(json: string, route: "connect" | "grpc" | "grpc-web"): Promise<{ code: Code | undefined; message: string; usernames: string[] }> {
    const authorization = `Bearer ${adminToken}`;
    if (route === "connect") {
      const response = await fetch(`${gw.baseUrl}${LIST_USERS}`, { method: "POST", headers: { "content-type": "application/json", authorization }, body: json });
      const body = (await response.json()) as { code?: string; message?: string; users?: Array<{ username: string }> };
      const code = body.code === undefined ? undefined : (Code[body.code.replace(/(^|_)(.)/g, (_, __, c: string) => c.toUpperCase()) as keyof typeof Code] as Code);
      return { code, message: body.message ?? "", usernames: (body.users ?? []).map((u) => u.username) };
    }
    const contentType = route === "grpc" ? "application/grpc+json" : "application/grpc-web+json";
    const answer = await probeRpc(gw.baseUrl, {
      protocol: route,
      httpVersion: route === "grpc" ? "2" : "1.1",
      path: LIST_USERS,
      body: envelope(0, Buffer.from(json)),
      headers: { "content-type": contentType, authorization },
    });
    return { code: answer.error?.code, message: answer.error?.rawMessage ?? "", usernames: [] };
  }

  it.each(["connect", "grpc", "grpc-web"] as const)('refuses {"role": "ROLE_GOD"} over %s with INVALID_ARGUMENT', async (route) => {
    const answer = await listUsers('{"role": "ROLE_GOD"}', route);
    expect(answer.code).toBe(Code.InvalidArgument);
    expect(answer.message).toBe("unknown value for enum portcullis.v1.Role in portcullis.v1.ListUsersRequest");
    expect(answer.usernames).toEqual([]);
  });

  it.each(["connect", "grpc", "grpc-web"] as const)("refuses an unknown field over %s with INVALID_ARGUMENT", async (route) => {
    const answer = await listUsers('{"rol": "ROLE_ADMIN"}', route);
    expect(answer.code).toBe(Code.InvalidArgument);
    expect(answer.message).toBe('unknown field "rol" in portcullis.v1.ListUsersRequest');
  });

  it("still applies a correct filter", async () => {
    const admins = await listUsers('{"role": "ROLE_ADMIN", "pageSize": 500}', "connect");
    expect(admins.code).toBeUndefined();
    expect(admins.usernames).toContain("jason-admin");
    expect(admins.usernames).not.toContain("jason-user");
    const everyone = await listUsers('{"pageSize": 500}', "connect");
    expect(everyone.usernames).toEqual(expect.arrayContaining(["jason-owner", "jason-admin", "jason-user"]));
  });
});
