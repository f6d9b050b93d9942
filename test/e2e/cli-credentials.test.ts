import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { createAccessTokenService } from "../../src/domain/tokens/access-tokens.ts";
import { runCli } from "../helpers/cli-process.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );

interface StoredFile {
  version: number;
  url: string;
  username: string;
  sessionId: string;
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
}

describe("the CLI's remembered login", () => {
  let gw: IdentityServer;
  let home: string;
  let aliceId = "";

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000" } });
    home = await mkdtemp(join(tmpdir(), "portcullis-cli-credentials-"));
    aliceId = (await gw.createUser("alice", "user"))._id;
  });
  afterAll(async () => {
    await gw.close();
    await rm(home, { recursive: true, force: true });
  });

  const cli = (args: string[], file: string, options: { stdin?: string; env?: Record<string, string> } = {}) =>
    runCli(args, { home, env: { PORTCULLIS_CREDENTIALS_FILE: file, ...options.env }, ...(options.stdin === undefined ? {} : { stdin: options.stdin }) });
  const read = async (file: string) => JSON.parse(await readFile(file, "utf8")) as StoredFile;
  const rewrite = (file: string, change: Partial<StoredFile>) => read(file).then((stored) => writeFile(file, JSON.stringify({ ...stored, ...change }), { mode: 0o600 }));

  /** Logs alice in through the CLI into a fresh credentials file and returns its path. */
  async function loggedIn(): Promise<string> {
    const file = join(await mkdtemp(join(home, "case-")), "credentials.json");
    const result = await cli(["login", "--username", "alice", "--url", gw.baseUrl], file, { stdin: testPassword("alice") });
    expect(result.stderr).toBe("");
    return file;
  }

  it("refuses a credentials file that group or others can read, in one line that shows no token", async () => {
    const file = await loggedIn();
    const { accessToken, refreshToken } = await read(file);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      await chmod(file, mode);
      const result = await cli(["whoami"], file);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr).toBe(
        `portcullis: refusing to use the credentials file ${file}: its mode 0${mode.toString(8)} lets group or others access it, so its tokens may have been read; delete it and log in again\n`,
      );
      expect(result.stderr).not.toContain(accessToken);
      expect(result.stderr).not.toContain(refreshToken);
    }
    await chmod(file, 0o600);
    expect((await cli(["whoami"], file)).code).toBe(0);
  });

  it("refuses a file that is not a login without quoting it", async () => {
    const file = join(await mkdtemp(join(home, "case-")), "credentials.json");
    await writeFile(file, '{"version":1,"url":"x","accessToken":"leaky-token-value"}', { mode: 0o600 });
    const result = await cli(["whoami"], file);
    expect(result).toEqual({ code: 1, stdout: "", stderr: `portcullis: the credentials file ${file} is not a valid Portcullis login; run "portcullis login" again\n` });
  });

  it("refreshes an expired access token transparently, saving the rotated refresh token atomically with mode 0600", async () => {
    const file = await loggedIn();
    const before = await read(file);
    await rewrite(file, { accessTokenExpiresAt: new Date(Date.now() - 1000).toISOString() });

    const result = await cli(["whoami", "--json"], file);
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toMatchObject({ user: { username: "alice" }, sessionId: before.sessionId });

    const after = await read(file);
    expect(after.sessionId).toBe(before.sessionId);
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(Date.parse(after.accessTokenExpiresAt)).toBeGreaterThan(Date.now());
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // No temporary or lock file left behind.
    expect(await readdir(dirname(file))).toEqual(["credentials.json"]);
    // The old refresh token was really used up: the server rotated it.
    expect((await codeOf(gw.client(AuthService).refresh({ refreshToken: before.refreshToken })))?.code).toBe(Code.Unauthenticated);
  });

  it("lets concurrent commands share one refresh instead of reusing a refresh token (which would end the session)", async () => {
    const file = await loggedIn();
    const before = await read(file);
    await rewrite(file, { accessTokenExpiresAt: new Date(Date.now() - 1000).toISOString() });

    const results = await Promise.all([1, 2, 3, 4].map(() => cli(["whoami", "--json"], file)));
    for (const result of results) expect(result).toMatchObject({ code: 0, stderr: "" });
    const after = await read(file);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    // The session survived: the saved refresh token still works.
    await expect(gw.client(AuthService).refresh({ refreshToken: after.refreshToken })).resolves.toMatchObject({ sessionId: before.sessionId });
  });

  it("refreshes and retries once when the gateway finds the token expired although the file says it is not", async () => {
    const file = await loggedIn();
    const before = await read(file);
    // A token of this very session, correctly signed, that expired twenty minutes ago (beyond any leeway).
    const clockInThePast = createAccessTokenService({
      keys: gw.gateway.signingKeys,
      issuer: gw.config.tokens.issuer,
      audience: gw.config.tokens.audience,
      now: () => Date.now() - 20 * 60_000,
    });
    const stale = await clockInThePast.issue({ userId: aliceId, sessionId: before.sessionId, role: "user", permissions: ["ai.query"], amr: "password" });
    await rewrite(file, { accessToken: stale.token, accessTokenExpiresAt: new Date(Date.now() + 10 * 60_000).toISOString() });

    const result = await cli(["whoami", "--json"], file);
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toMatchObject({ user: { username: "alice" }, sessionId: before.sessionId });
    const after = await read(file);
    expect(after.accessToken).not.toBe(stale.token);
    expect(after.refreshToken).not.toBe(before.refreshToken);
  });

  it("says to log in again when the session has ended, and when the refresh token has expired", async () => {
    const file = await loggedIn();
    const { accessToken } = await read(file);
    await gw.client(AuthService, { token: accessToken }).logout({});
    await rewrite(file, { accessTokenExpiresAt: new Date(Date.now() - 1000).toISOString() });
    const ended = await cli(["whoami"], file);
    expect(ended).toEqual({ code: 1, stdout: "", stderr: `portcullis: ${gw.baseUrl} ended your login (expired or revoked); run "portcullis login" again\n` });

    await rewrite(file, { refreshTokenExpiresAt: new Date(Date.now() - 1000).toISOString() });
    expect((await cli(["whoami"], file)).stderr).toBe(`portcullis: your login at ${gw.baseUrl} has expired; run "portcullis login" again\n`);
  });

  it("never sends the remembered tokens to another URL", async () => {
    const file = await loggedIn();
    const elsewhere = "http://127.0.0.1:9";
    for (const env of [{}, { PORTCULLIS_URL: elsewhere }] as Array<Record<string, string>>) {
      const args = "PORTCULLIS_URL" in env ? ["whoami"] : ["whoami", "--url", elsewhere];
      const result = await cli(args, file, { env });
      expect(result).toEqual({ code: 1, stdout: "", stderr: `portcullis: the remembered login is for ${gw.baseUrl}, not ${elsewhere}: run "portcullis login --url ${elsewhere}"\n` });
    }
  });

  it("uses PORTCULLIS_TOKEN or --token instead of the file, and reports an unreachable gateway in one line", async () => {
    const file = join(await mkdtemp(join(home, "case-")), "absent.json");
    const { accessToken } = await gw.client(AuthService).login({ username: "alice", password: testPassword("alice") });
    const viaEnv = await cli(["whoami"], file, { env: { PORTCULLIS_URL: gw.baseUrl, PORTCULLIS_TOKEN: accessToken } });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toMatch(/^alice \(role user, MFA off, signed in by password, session .*\)\nGateway: http:\/\/127\.0\.0\.1:\d+\nPermissions: .*ai\.query/);

    const viaFlag = await cli(["whoami", "--json", "--url", gw.baseUrl, "--token", accessToken], file);
    expect(JSON.parse(viaFlag.stdout)).toMatchObject({ user: { username: "alice" } });

    const bad = await cli(["whoami", "--url", gw.baseUrl, "--token", "not.a-valid.token"], file);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`portcullis: invalid token (unauthenticated, refused by ${gw.baseUrl})\n`);
    expect(bad.stderr).not.toContain("not.a-valid.token");

    const closed = await cli(["whoami", "--url", "http://127.0.0.1:9", "--token", accessToken], file);
    expect(closed).toEqual({ code: 1, stdout: "", stderr: "portcullis: cannot reach the gateway at http://127.0.0.1:9 (ECONNREFUSED)\n" });
    expect((await cli(["whoami", "--token", accessToken, "--api-key", "sk_x"], file)).code).toBe(2);
  });

  it("stops quietly when the reader of stdout has gone", async () => {
    const { accessToken } = await gw.client(AuthService).login({ username: "alice", password: testPassword("alice") });
    const result = await runCli(["whoami", "--json", "--url", gw.baseUrl], { home, env: { PORTCULLIS_TOKEN: accessToken }, closeStdout: true });
    expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
  });
});
