import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { runCli } from "../helpers/cli-process.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

// Nothing listens here: a credential sent to it is refused by the network, and the error names it.
const ELSEWHERE = "http://127.0.0.1:9";

/**
 * Which gateway a credential goes to. `--help` and the README promise: the URL is `--url`, else
 * PORTCULLIS_URL, else the remembered login's, else http://127.0.0.1:50051 — whatever the credential
 * (remembered login, PORTCULLIS_TOKEN / --token, PORTCULLIS_API_KEY / --api-key, a password for login).
 * A credential must never go to a server the user did not mean.
 */
describe("the CLI sends each credential to the gateway the user meant", () => {
  let gw: IdentityServer;
  let home: string;
  let file = "";
  let apiKey = "";
  let token = "";

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000" } });
    home = await mkdtemp(join(tmpdir(), "portcullis-cli-url-"));
    await gw.createUser("alice", "user");
    token = (await gw.client(AuthService).login({ username: "alice", password: testPassword("alice") })).accessToken;
    apiKey = (await gw.client(ApiKeyService, { token }).createApiKey({ name: "laptop", scopes: ["ai.status"] })).secret;
    // The remembered login, made against the real gateway.
    file = join(home, "remembered", "credentials.json");
    const login = await cli(["login", "--username", "alice", "--url", gw.baseUrl], {}, testPassword("alice"));
    expect(login.stderr).toBe("");
  });
  afterAll(async () => {
    await gw?.close();
    await rm(home, { recursive: true, force: true });
  });

  function cli(args: string[], env: Record<string, string> = {}, stdin?: string) {
    return runCli(args, { home, env: { PORTCULLIS_CREDENTIALS_FILE: file, ...env }, ...(stdin === undefined ? {} : { stdin }) });
  }
  const gatewayLine = (stdout: string) => /^Gateway: (.*)$/m.exec(stdout)?.[1];

  it("with PORTCULLIS_API_KEY or PORTCULLIS_TOKEN (or the flags) and no URL, goes to the remembered login's gateway", async () => {
    const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
      ["PORTCULLIS_API_KEY", ["whoami"], { PORTCULLIS_API_KEY: apiKey }, /^API key \w+ of alice/],
      ["PORTCULLIS_TOKEN", ["whoami"], { PORTCULLIS_TOKEN: token }, /^alice \(role user/],
      ["--api-key", ["whoami", "--api-key", apiKey], {}, /^API key \w+ of alice/],
      ["--token", ["whoami", "--token", token], {}, /^alice \(role user/],
      ["both variables: the token wins", ["whoami"], { PORTCULLIS_TOKEN: token, PORTCULLIS_API_KEY: "sk_not_a_key" }, /^alice \(role user/],
      ["the remembered login itself", ["whoami"], {}, /^alice \(role user/],
    ];
    for (const [name, args, env, who] of cases) {
      const result = await cli(args, env);
      expect(result.stderr, name).toBe("");
      expect(result.code, name).toBe(0);
      expect(result.stdout, name).toMatch(who);
      expect(gatewayLine(result.stdout), name).toBe(gw.baseUrl);
    }
  });

  it("an explicit URL wins: --url over PORTCULLIS_URL over the remembered login's", async () => {
    const unreachable = `portcullis: cannot reach the gateway at ${ELSEWHERE} (ECONNREFUSED)\n`;
    expect(await cli(["whoami"], { PORTCULLIS_API_KEY: apiKey, PORTCULLIS_URL: ELSEWHERE })).toEqual({ code: 1, stdout: "", stderr: unreachable });
    expect(await cli(["whoami", "--url", ELSEWHERE], { PORTCULLIS_TOKEN: token, PORTCULLIS_URL: gw.baseUrl })).toEqual({ code: 1, stdout: "", stderr: unreachable });
    const flagWins = await cli(["whoami", "--url", gw.baseUrl], { PORTCULLIS_API_KEY: apiKey, PORTCULLIS_URL: ELSEWHERE });
    expect([flagWins.code, gatewayLine(flagWins.stdout)]).toEqual([0, gw.baseUrl]);
    // The remembered tokens themselves never go to another URL.
    expect((await cli(["whoami"], { PORTCULLIS_URL: ELSEWHERE })).stderr).toBe(`portcullis: the remembered login is for ${gw.baseUrl}, not ${ELSEWHERE}: run "portcullis login --url ${ELSEWHERE}"\n`);
  });

  it("login without --url sends the password to the remembered login's gateway", async () => {
    const again = await cli(["login", "--username", "alice"], {}, testPassword("alice"));
    expect(again.stderr).toBe("");
    expect(again.stdout.startsWith(`Logged in to ${gw.baseUrl}: alice (role user`)).toBe(true);
    const elsewhere = await cli(["login", "--username", "alice"], { PORTCULLIS_URL: ELSEWHERE }, testPassword("alice"));
    expect(elsewhere.stderr).toBe(`portcullis: cannot reach the gateway at ${ELSEWHERE} (ECONNREFUSED)\n`);
  });

  it("names the gateway that refused a credential as unauthenticated", async () => {
    const forged = `${apiKey.slice(0, -8)}${apiKey.slice(-8).split("").reverse().join("")}`;
    for (const env of [{ PORTCULLIS_API_KEY: forged }, { PORTCULLIS_TOKEN: "not.a-valid.token" }] as Array<Record<string, string>>) {
      const result = await cli(["whoami"], env);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^portcullis: [^\\n]+ \\(unauthenticated, refused by ${gw.baseUrl.replace(/[.:/]/g, "\\$&")}\\)\\n$`));
      expect(result.stderr).not.toContain(forged);
    }
  });

  it("will not take the gateway from a credentials file others can write: it asks for --url instead", async () => {
    await chmod(file, 0o664);
    try {
      const refused = await cli(["whoami"], { PORTCULLIS_API_KEY: apiKey });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^portcullis: refusing to use the credentials file .* \(or pass --url or PORTCULLIS_URL to name the gateway\)\n$/);
      const named = await cli(["whoami", "--url", gw.baseUrl], { PORTCULLIS_API_KEY: apiKey });
      expect([named.code, gatewayLine(named.stdout)]).toEqual([0, gw.baseUrl]);
    } finally {
      await chmod(file, 0o600);
    }
  });
});
