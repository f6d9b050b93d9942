import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { totpCodeAt } from "../../src/domain/mfa/totp.ts";
import { runCli } from "../helpers/cli-process.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );

describe("portcullis login / logout", () => {
  let gw: IdentityServer;
  let home: string;
  let totpSecret = "";
  let backupCodes: string[] = [];

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000" } });
    home = await mkdtemp(join(tmpdir(), "portcullis-cli-login-"));
    await gw.createUser("alice", "user");
    await gw.createUser("mona", "admin");
    // Mona enrols TOTP MFA; the test keeps her secret to compute codes as her authenticator app would.
    const first = await gw.client(AuthService).login({ username: "mona", password: testPassword("mona") });
    const auth = gw.client(AuthService, { token: first.accessToken });
    totpSecret = (await auth.beginMfaEnrollment({})).secret;
    backupCodes = (await auth.confirmMfaEnrollment({ totpCode: totpCodeAt(totpSecret, Date.now() - 30_000) })).backupCodes;
  });
  afterAll(async () => {
    await gw.close();
    await rm(home, { recursive: true, force: true });
  });

  /** A credentials file of its own for each test, in a directory that does not exist yet. */
  const credentialsIn = async () => {
    const dir = await mkdtemp(join(home, "case-"));
    return join(dir, "portcullis", "credentials.json");
  };
  const cli = (args: string[], file: string, stdin?: string, env: Record<string, string> = {}) =>
    runCli(args, { home, env: { PORTCULLIS_CREDENTIALS_FILE: file, ...env }, ...(stdin === undefined ? {} : { stdin }) });

  it("logs in with a password piped on stdin, says who logged in, and remembers the session in a 0600 file", async () => {
    const file = await credentialsIn();
    // A stale token in the environment plays no part in logging in.
    const result = await cli(["login", "--username", "alice", "--url", gw.baseUrl], file, `${testPassword("alice")}\n`, { PORTCULLIS_TOKEN: "stale.token.value" });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Logged in to ${gw.baseUrl}: alice \\(role user, MFA off, signed in by password, session [0-9a-f-]+\\)\\n$`));

    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(await readFile(file, "utf8")) as Record<string, string>;
    expect(stored).toMatchObject({ version: 1, url: gw.baseUrl, username: "alice" });
    expect(stored["refreshToken"]).toMatch(/^rt_/);
    expect(Date.parse(stored["accessTokenExpiresAt"]!)).toBeGreaterThan(Date.now());
    expect(JSON.stringify(stored)).not.toContain(testPassword("alice"));

    // The remembered login is used by later commands, with the URL it was made for.
    const me = await cli(["whoami", "--json"], file);
    expect(me.code).toBe(0);
    const json = JSON.parse(me.stdout) as { user: { username: string; role: string }; sessionId: string; authMethod: string };
    expect(json.user).toMatchObject({ username: "alice", role: "ROLE_USER" });
    expect(json.sessionId).toBe(stored["sessionId"]);
    expect(json.authMethod).toBe("AUTH_METHOD_PASSWORD");
  });

  it("answers a wrong password with one line on stderr and exit 1, and saves nothing", async () => {
    const file = await credentialsIn();
    const wrong = "not-alices-password-at-all";
    const result = await cli(["login", "--username", "alice", "--url", gw.baseUrl], file, wrong);
    expect(result).toEqual({ code: 1, stdout: "", stderr: `portcullis: invalid username, password or code (unauthenticated, refused by ${gw.baseUrl})\n` });
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("without a terminal, fails (exit 1) asking for --totp when the account has MFA; logs in with a TOTP code or a backup code", async () => {
    const file = await credentialsIn();
    const password = `${testPassword("mona")}\n`;
    const without = await cli(["login", "--username", "mona", "--url", gw.baseUrl], file, password);
    expect(without.code).toBe(1);
    expect(without.stderr).toBe("portcullis: this account requires an MFA code and there is no terminal to ask for it: pass --totp CODE (a TOTP code or a backup code)\n");
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });

    const withTotp = await cli(["login", "--username", "mona", "--url", gw.baseUrl, "--totp", totpCodeAt(totpSecret, Date.now())], file, password);
    expect(withTotp.stderr).toBe("");
    expect(withTotp.stdout).toMatch(/^Logged in to .*: mona \(role admin, MFA on, signed in by password, session /);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const me = JSON.parse((await cli(["whoami", "--json"], file)).stdout) as { user: { username: string }; mfaEnabled?: boolean };
    expect(me).toMatchObject({ user: { username: "mona" }, mfaEnabled: true });

    const withBackup = await cli(["login", "--username", "mona", "--url", gw.baseUrl, "--totp", backupCodes[0]!], file, password);
    expect(withBackup.code).toBe(0);
    expect(withBackup.stdout).toContain("A backup code was used; 9 remain.\n");

    const reused = await cli(["login", "--username", "mona", "--url", gw.baseUrl, "--totp", backupCodes[0]!], file, password);
    expect(reused).toMatchObject({ code: 1, stderr: `portcullis: invalid username, password or code (unauthenticated, refused by ${gw.baseUrl})\n` });
  });

  it("logout ends the session at the gateway and deletes the file; a second logout has nothing to do", async () => {
    const file = await credentialsIn();
    expect((await cli(["login", "--username", "alice", "--url", gw.baseUrl], file, testPassword("alice"))).code).toBe(0);
    const stored = JSON.parse(await readFile(file, "utf8")) as { accessToken: string; refreshToken: string };

    const out = await cli(["logout"], file);
    expect(out).toEqual({ code: 0, stdout: `Logged out of ${gw.baseUrl}.\n`, stderr: "" });
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
    expect((await codeOf(gw.client(AuthService).refresh({ refreshToken: stored.refreshToken })))?.code).toBe(Code.Unauthenticated);
    expect((await codeOf(gw.client(AuthService, { token: stored.accessToken }).whoAmI({})))?.code).toBe(Code.Unauthenticated);

    expect(await cli(["logout"], file)).toEqual({ code: 0, stdout: "Not logged in.\n", stderr: "" });
    const whoami = await cli(["whoami"], file);
    expect(whoami.code).toBe(1);
    expect(whoami.stderr).toBe('portcullis: not logged in: run "portcullis login" (or set PORTCULLIS_TOKEN or PORTCULLIS_API_KEY)\n');
  });

  it("refuses usage errors with exit 2 and one line that never echoes a flag's value", async () => {
    const file = await credentialsIn();
    const cases: Array<[string[], RegExp]> = [
      [["login", "--password", "hunter2-secret"], /^portcullis: Unknown option '--password'; see --help\n$/],
      [["login", "--password=hunter2-secret"], /^portcullis: Unknown option '--password'; see --help\n$/],
      [["login", "--url", gw.baseUrl], /^portcullis: --username is required when stdin is not a terminal; see --help\n$/],
      [["login", "--username", "alice", "--url", "ftp://example.com"], /^portcullis: --url must be an http:\/\/ or https:\/\/ URL; see --help\n$/],
      [["login", "--username", "alice", "--url", "http://bob:hunter2-secret@example.com"], /^portcullis: --url must not contain a user name or password; see --help\n$/],
      [["whoami", "surplus"], /^portcullis: unexpected argument "surplus"; see --help\n$/],
      [["no-such-command"], /^portcullis: unknown command "no-such-command"; see --help\n$/],
    ];
    for (const [args, stderr] of cases) {
      const result = await cli(args, file, "password-on-stdin");
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(stderr);
      expect(result.stderr).not.toContain("hunter2-secret");
    }
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("prints help per command on stdout with exit 0", async () => {
    const file = await credentialsIn();
    for (const args of [["--help"], ["login", "--help"], ["logout", "-h"], ["whoami", "--help"]]) {
      const result = await cli(args, file);
      expect(result.code, args.join(" ")).toBe(0);
      expect(result.stdout).toMatch(/^Usage: portcullis /);
      expect(result.stderr).toBe("");
    }
  });
});
