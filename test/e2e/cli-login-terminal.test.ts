import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { totpCodeAt } from "../../src/domain/mfa/totp.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
// util-linux `script` gives the CLI a real pseudo-terminal; without it (macOS's differs) these tests skip.
const hasScript = spawnSync("script", ["--version"], { encoding: "utf8" }).stdout?.includes("util-linux") ?? false;

/**
 * Runs the CLI on a pseudo-terminal and answers its prompts in turn: each time the output ends with a
 * prompt of `answers`, the answer is typed followed by Enter. Returns everything the terminal showed.
 * With `pipedStdin`, the CLI's stdin is a pipe carrying that text instead, the terminal still its own.
 */
function runOnTerminal(args: string[], env: Record<string, string>, answers: Array<[prompt: string, answer: string]>, pipedStdin?: string): Promise<{ code: number | null; screen: string }> {
  const quote = (part: string) => `'${part.replaceAll("'", "'\\''")}'`;
  const cli = [process.execPath, "src/cli/main.ts", ...args].map(quote).join(" ");
  const command = pipedStdin === undefined ? cli : `printf %s ${quote(pipedStdin)} | ${cli}`;
  const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", TERM: "dumb", ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let screen = "";
  const pending = [...answers];
  const onOutput = (chunk: Buffer) => {
    screen += chunk.toString();
    const next = pending[0];
    if (next && screen.trimEnd().endsWith(next[0].trimEnd())) {
      pending.shift();
      child.stdin.write(`${next[1]}\r`);
    }
  };
  child.stdout.on("data", onOutput);
  child.stderr.on("data", onOutput);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, screen });
    });
  });
}

describe.skipIf(!hasScript)("portcullis login at a terminal", () => {
  let gw: IdentityServer;
  let home: string;
  let totpSecret = "";

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000" } });
    home = await mkdtemp(join(tmpdir(), "portcullis-cli-tty-"));
    await gw.createUser("alice", "user");
    await gw.createUser("mona", "user");
    const first = await gw.client(AuthService).login({ username: "mona", password: testPassword("mona") });
    const auth = gw.client(AuthService, { token: first.accessToken });
    totpSecret = (await auth.beginMfaEnrollment({})).secret;
    await auth.confirmMfaEnrollment({ totpCode: totpCodeAt(totpSecret, Date.now() - 30_000) });
  });
  afterAll(async () => {
    await gw.close();
    await rm(home, { recursive: true, force: true });
  });

  it("prompts for the username, then for the password without echoing it", async () => {
    const file = join(home, "alice", "credentials.json");
    const password = testPassword("alice");
    const { code, screen } = await runOnTerminal(["login", "--url", gw.baseUrl], { HOME: home, PORTCULLIS_CREDENTIALS_FILE: file }, [
      ["Username:", "alice"],
      ["Password:", password],
    ]);
    expect(screen).toMatch(/Username: alice/);
    expect(screen).not.toContain(password);
    expect(screen).toMatch(/Logged in to http:\/\/127\.0\.0\.1:\d+: alice \(role user/);
    expect(code).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ username: "alice" });
  });

  it("asks for the MFA code when the gateway requires one", async () => {
    const file = join(home, "mona", "credentials.json");
    const { code, screen } = await runOnTerminal(["login", "--url", gw.baseUrl, "--username", "mona"], { HOME: home, PORTCULLIS_CREDENTIALS_FILE: file }, [
      ["Password:", testPassword("mona")],
      ["MFA code (TOTP or backup code):", totpCodeAt(totpSecret, Date.now())],
    ]);
    expect(screen).not.toContain(testPassword("mona"));
    expect(screen).toMatch(/Logged in to .*: mona \(role user, MFA on/);
    expect(code).toBe(0);
  });

  it("asks for the MFA code at the terminal when the password is piped in", async () => {
    const file = join(home, "mona-piped", "credentials.json");
    const { code, screen } = await runOnTerminal(
      ["login", "--url", gw.baseUrl, "--username", "mona"],
      { HOME: home, PORTCULLIS_CREDENTIALS_FILE: file },
      [["MFA code (TOTP or backup code):", totpCodeAt(totpSecret, Date.now() + 30_000)]],
      testPassword("mona"),
    );
    expect(screen).toMatch(/Logged in to .*: mona \(role user, MFA on/);
    expect(code).toBe(0);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ username: "mona" });
  });
});
