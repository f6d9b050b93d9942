import { execFile } from "node:child_process";
import { request } from "node:http";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { ensureGrpcurl } from "../helpers/grpcurl.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const run = promisify(execFile);
const grpcurl = await ensureGrpcurl();

/**
 * Issue 11, item 6: a request carrying two credentials is refused with UNAUTHENTICATED instead of being
 * read as its first one. No client library sends two `authorization` fields (they merge them), so the
 * HTTP/2 case uses grpcurl and the HTTP/1.1 case a plain Connect unary request.
 */
describe("ambiguous credentials", () => {
  let gw: IdentityServer;
  let admin: string;
  let user: string;
  let userKey: string;

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("admin-amb", "admin");
    await gw.createUser("user-amb", "user");
    admin = (await gw.client(AuthService).login({ username: "admin-amb", password: testPassword("admin-amb") })).accessToken;
    user = (await gw.client(AuthService).login({ username: "user-amb", password: testPassword("user-amb") })).accessToken;
    userKey = (await gw.client(ApiKeyService, { token: user }).createApiKey({ name: "amb", scopes: ["ai.status"] })).secret;
  });
  afterAll(async () => {
    await gw.close();
  });

  /** A Connect unary call of AuthService/WhoAmI over HTTP/1.1 with these raw header fields. */
  const connectHttp1 = (headers: Array<[string, string]>) =>
    new Promise<{ status: number; body: { code?: string; principal?: { userId?: string } } }>((resolve, reject) => {
      // A raw header list gets no automatic host or framing: both are given, as a client would.
      const raw = [["host", `127.0.0.1:${gw.port}`], ["content-type", "application/json"], ["content-length", "2"], ...headers].flat();
      const req = request({ host: "127.0.0.1", port: gw.port, method: "POST", path: "/portcullis.v1.AuthService/WhoAmI", headers: raw }, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as never });
          } catch (error) {
            reject(error as Error);
          }
        });
      });
      req.on("error", reject);
      req.end("{}");
    });

  it("refuses two authorization fields over HTTP/1.1 (Connect), whichever comes first", async () => {
    for (const pair of [
      [admin, user],
      [user, admin],
      [admin, admin],
    ]) {
      const answer = await connectHttp1(pair.map((token) => ["authorization", `Bearer ${token}`] as [string, string]));
      expect(answer.status).toBe(401);
      expect(answer.body.code).toBe("unauthenticated");
    }
    // One field is fine: the probe itself is sound.
    expect((await connectHttp1([["authorization", `Bearer ${user}`]])).status).toBe(200);
  });

  it.skipIf(grpcurl === undefined)("refuses two authorization fields over HTTP/2 (gRPC, grpcurl)", async () => {
    const whoAmI = async (tokens: string[]) => {
      const flags = tokens.flatMap((token) => ["-rpc-header", `authorization: Bearer ${token}`]);
      try {
        const { stdout } = await run(grpcurl!, ["-plaintext", ...flags, "-d", "{}", `127.0.0.1:${gw.port}`, "portcullis.v1.AuthService/WhoAmI"], { timeout: 20_000 });
        return { ok: true, text: stdout };
      } catch (error) {
        return { ok: false, text: (error as { stderr: string }).stderr };
      }
    };
    for (const pair of [
      [admin, user],
      [user, admin],
    ]) {
      const answer = await whoAmI(pair);
      expect(answer.ok).toBe(false);
      expect(answer.text).toContain("Unauthenticated");
    }
    expect((await whoAmI([user])).ok).toBe(true);
  });

  it.each(["grpc", "connect"] as const)("refuses authorization together with x-api-key (%s)", async (protocol) => {
    const client = gw.client(AuthService, { protocol, token: admin });
    for (const apiKey of [userKey, admin]) {
      const error = await client.whoAmI({}, { headers: { "x-api-key": apiKey } }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.Unauthenticated);
    }
  });
});
