import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../helpers/cli-process.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

interface KeyJson {
  id: string;
  name: string;
  ownerUserId: string;
  scopes?: string[];
  status: string;
  rateLimitTier?: string;
  allowedCidrs?: string[];
  metadata?: Record<string, string>;
  expiresAt?: string;
  parentKeyId?: string;
  revokeReason?: string;
}

describe("portcullis keys", () => {
  let gw: IdentityServer;
  let home: string;
  const files: Record<string, string> = {};
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000", PORTCULLIS_API_KEY_ALLOW_NO_EXPIRY: "true" } });
    home = await mkdtemp(join(tmpdir(), "portcullis-cli-keys-"));
    for (const [name, role] of [
      ["olga", "owner"],
      ["adam", "admin"],
      ["alice", "user"],
      ["bob", "user"],
    ] as const) {
      ids[name] = (await gw.createUser(name, role))._id;
      files[name] = join(home, name, "credentials.json");
      const login = await runCli(["login", "--username", name, "--url", gw.baseUrl], { home, env: { PORTCULLIS_CREDENTIALS_FILE: files[name] }, stdin: testPassword(name) });
      expect(login.stderr).toBe("");
    }
  });
  afterAll(async () => {
    await gw.close();
    await rm(home, { recursive: true, force: true });
  });

  /** Runs the CLI as `user` (their remembered login). */
  const as = (user: string, args: string[]) => runCli(args, { home, env: { PORTCULLIS_CREDENTIALS_FILE: files[user]! } });
  /** Runs the CLI with an API key from the environment and no remembered login. */
  const withKey = (key: string, args: string[]) => runCli(args, { home, env: { PORTCULLIS_URL: gw.baseUrl, PORTCULLIS_API_KEY: key, PORTCULLIS_CREDENTIALS_FILE: join(home, "none.json") } });
  const json = <T>(result: CliResult): T => {
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  /** Revocation reaches every instance within a second: poll up to 3 s for the key to be refused. */
  async function refusedSoon(key: string): Promise<CliResult> {
    let result = await withKey(key, ["whoami"]);
    for (let i = 0; i < 15 && result.code === 0; i++) {
      await sleep(200);
      result = await withKey(key, ["whoami"]);
    }
    return result;
  }

  it("create shows the key once with a warning; --quiet prints the key alone; --json prints the response", async () => {
    const human = await as("alice", ["keys", "create", "--name", "ci deploy", "--scope", "ai.query", "--expires-in", "30d", "--metadata", "team=search"]);
    expect(human.stderr).toBe("");
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Created API key "ci deploy"\.\n\nAPI key \(shown only this once; it cannot be retrieved again, so store it now\):\n\n {2}\S+\n\nID: +\S+\n/);
    expect(human.stdout).toContain("Metadata:      team=search\n");

    const quiet = await as("alice", ["keys", "create", "--name", "nightly", "--scope", "ai.query", "--quiet"]);
    expect(quiet.stderr).toBe("");
    expect(quiet.stdout).toMatch(/^\S+\n$/);
    // The key works: the gateway takes it for alice's key.
    const me = json<{ principal: { kind: string }; user: { username: string } }>(await withKey(quiet.stdout.trim(), ["whoami", "--json"]));
    expect(me).toMatchObject({ principal: { kind: "PRINCIPAL_KIND_API_KEY" }, user: { username: "alice" } });

    const created = json<{ apiKey: KeyJson; secret: string }>(
      await as("alice", ["keys", "create", "--name", "edge", "--scope", "ai.query", "--tier", "basic", "--cidr", "10.0.0.0/8", "--cidr", "2001:db8::/32", "--json"]),
    );
    expect(created.secret).not.toBe("");
    expect(created.apiKey).toMatchObject({
      name: "edge",
      ownerUserId: ids["alice"],
      scopes: ["ai.query"],
      status: "API_KEY_STATUS_ACTIVE",
      rateLimitTier: "RATE_LIMIT_TIER_BASIC",
      allowedCidrs: ["10.0.0.0/8", "2001:db8::/32"],
    });
    expect(JSON.stringify(created.apiKey)).not.toContain(created.secret);
  });

  it("list prints a table, ids with --quiet, every key with --json, and filters by status", async () => {
    const table = await as("alice", ["keys", "list"]);
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^ID +NAME +PREFIX +STATUS +SCOPES +TIER +EXPIRES +LAST USED +USES$/);
    expect(rows.length).toBeGreaterThanOrEqual(3);
    expect(rows.some((row) => /\bci deploy +\S+ +active +ai\.query +standard\b/.test(row))).toBe(true);

    const listed = json<{ apiKeys: KeyJson[] }>(await as("alice", ["keys", "list", "--json"]));
    expect(listed.apiKeys.map((key) => key.name).sort()).toEqual(["ci deploy", "edge", "nightly"]);
    expect(listed.apiKeys.every((key) => key.ownerUserId === ids["alice"])).toBe(true);
    const quiet = await as("alice", ["keys", "list", "--quiet"]);
    expect(quiet.stdout.trimEnd().split("\n").sort()).toEqual(listed.apiKeys.map((key) => key.id).sort());

    expect(json<{ apiKeys?: KeyJson[] }>(await as("alice", ["keys", "list", "--status", "revoked", "--json"])).apiKeys ?? []).toEqual([]);
    expect((await as("bob", ["keys", "list"])).stdout).toBe("No API keys.\n");
  });

  it("get shows one key; another user's key is not found", async () => {
    const [key] = json<{ apiKeys: KeyJson[] }>(await as("alice", ["keys", "list", "--json"])).apiKeys.filter((k) => k.name === "ci deploy");
    const details = await as("alice", ["keys", "get", key!.id]);
    expect(details.code).toBe(0);
    expect(details.stdout).toMatch(new RegExp(`^ID: +${key!.id}\\nName: +ci deploy\\n`));
    expect(json<{ apiKey: KeyJson }>(await as("alice", ["keys", "get", key!.id, "--json"])).apiKey).toMatchObject({ id: key!.id, metadata: { team: "search" } });

    const foreign = await as("bob", ["keys", "get", key!.id]);
    expect(foreign.code).toBe(1);
    expect(foreign.stdout).toBe("");
    expect(foreign.stderr).toMatch(/^portcullis: [^\n]+ \(not_found\)\n$/);
  });

  it("rotate returns a new key; with --grace the old one keeps working, without it the old one stops", async () => {
    const original = json<{ apiKey: KeyJson; secret: string }>(await as("alice", ["keys", "create", "--name", "rotating", "--scope", "ai.query", "--json"]));
    const graceful = json<{ apiKey: KeyJson; secret: string; parentKeyId: string; graceExpiresAt: string }>(await as("alice", ["keys", "rotate", original.apiKey.id, "--grace", "1h", "--json"]));
    expect(graceful.parentKeyId).toBe(original.apiKey.id);
    expect(graceful.secret).not.toBe(original.secret);
    expect(Date.parse(graceful.graceExpiresAt)).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect((await withKey(original.secret, ["whoami"])).code).toBe(0);
    expect((await withKey(graceful.secret, ["whoami"])).code).toBe(0);
    expect(json<{ apiKey: KeyJson }>(await as("alice", ["keys", "get", original.apiKey.id, "--json"])).apiKey.status).toBe("API_KEY_STATUS_ROTATED");

    const human = await as("alice", ["keys", "rotate", graceful.apiKey.id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^Rotated API key ${graceful.apiKey.id}: the old key has stopped working\\.\\n\\nAPI key \\(shown only this once`));
    const refused = await refusedSoon(graceful.secret);
    expect(refused.code).toBe(1);
    expect(refused.stderr.startsWith("portcullis: ")).toBe(true);
    expect(refused.stderr.endsWith(` (unauthenticated, refused by ${gw.baseUrl})\n`)).toBe(true);
    expect(refused.stderr).not.toContain(graceful.secret);

    // A rotated key cannot be rotated again.
    const again = await as("alice", ["keys", "rotate", original.apiKey.id, "--quiet"]);
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(/\(failed_precondition\)\n$/);
  });

  it("revoke stops a key at once and records the reason; revoke-all revokes only the caller's keys", async () => {
    const victim = json<{ apiKey: KeyJson; secret: string }>(await as("bob", ["keys", "create", "--name", "leaky", "--scope", "ai.query", "--json"]));
    await as("bob", ["keys", "create", "--name", "second", "--scope", "ai.query", "--quiet"]);
    const revoked = await as("bob", ["keys", "revoke", victim.apiKey.id, "--reason", "leaked in a CI log"]);
    expect(revoked.stderr).toBe("");
    expect(revoked.stdout).toMatch(new RegExp(`^Revoked API key ${victim.apiKey.id} "leaky" at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\\.\\n$`));
    expect((await refusedSoon(victim.secret)).code).toBe(1);
    expect(json<{ apiKey: KeyJson }>(await as("bob", ["keys", "get", victim.apiKey.id, "--json"])).apiKey).toMatchObject({ status: "API_KEY_STATUS_REVOKED", revokeReason: "leaked in a CI log" });

    const aliceActive = json<{ apiKeys?: KeyJson[] }>(await as("alice", ["keys", "list", "--status", "active", "--json"])).apiKeys ?? [];
    const all = await as("bob", ["keys", "revoke-all", "--reason", "laptop stolen"]);
    expect(all).toEqual({ code: 0, stdout: "Revoked 1 API key.\n", stderr: "" });
    expect(json<{ apiKeys?: KeyJson[] }>(await as("bob", ["keys", "list", "--status", "active", "--json"])).apiKeys ?? []).toEqual([]);
    expect(json<{ apiKeys?: KeyJson[] }>(await as("alice", ["keys", "list", "--status", "active", "--json"])).apiKeys ?? []).toHaveLength(aliceActive.length);
  });

  it("enforces the server's rules: no scope widening, no other users' keys without the right role", async () => {
    const widen = await as("alice", ["keys", "create", "--name", "too-much", "--scope", "users.manage"]);
    expect(widen).toMatchObject({ code: 1, stdout: "" });
    expect(widen.stderr).toMatch(/^portcullis: [^\n]+ \(permission_denied\)\n$/);

    const everyone = await as("alice", ["keys", "list", "--all"]);
    expect(everyone).toMatchObject({ code: 1, stdout: "" });
    expect(everyone.stderr).toMatch(/\(permission_denied\)\n$/);
    expect((await as("alice", ["keys", "revoke-all", "--reason", "x", "--everyone"])).stderr).toMatch(/\(permission_denied\)\n$/);

    const adminView = await as("adam", ["keys", "list", "--all"]);
    expect(adminView.code).toBe(0);
    expect(adminView.stdout.split("\n")[0]).toMatch(/^ID +NAME +OWNER +PREFIX/);
    expect(adminView.stdout).toContain(ids["alice"]);
    expect(adminView.stdout).toContain(ids["bob"]);
    const aliceOnly = json<{ apiKeys: KeyJson[] }>(await as("adam", ["keys", "list", "--user", ids["alice"]!, "--json"]));
    expect(aliceOnly.apiKeys.length).toBeGreaterThan(0);
    expect(aliceOnly.apiKeys.every((key) => key.ownerUserId === ids["alice"])).toBe(true);
  });

  it("health reports the keys checked and each finding with advice, in a table or as JSON", async () => {
    const forever = json<{ apiKey: KeyJson }>(await as("alice", ["keys", "create", "--name", "forever", "--scope", "ai.query", "--no-expiry", "--json"]));
    expect(forever.apiKey.expiresAt).toBeUndefined();

    const report = json<{ checkedCount?: string; findings?: Array<{ kind: string; keyId: string; keyName: string; advice: string }> }>(await as("adam", ["keys", "health", "--all", "--json"]));
    expect(Number(report.checkedCount)).toBeGreaterThan(1);
    const finding = report.findings?.find((f) => f.keyId === forever.apiKey.id);
    expect(finding).toMatchObject({ kind: "API_KEY_FINDING_KIND_NO_EXPIRY", keyName: "forever" });
    expect(finding?.advice).not.toBe("");

    const human = await as("alice", ["keys", "health"]);
    expect(human.stderr).toBe("");
    const [summary, blank, header, ...rows] = human.stdout.trimEnd().split("\n");
    expect(summary).toMatch(/^Checked \d+ keys: \d+ findings?\.$/);
    expect(blank).toBe("");
    expect(header).toMatch(/^SEVERITY +FINDING +KEY +NAME +ADVICE$/);
    expect(rows.some((row) => row.includes("no-expiry") && row.includes(forever.apiKey.id) && row.includes("forever"))).toBe(true);
    expect((await as("adam", ["keys", "health", "--all"])).stdout.split("\n")[2]).toMatch(/^SEVERITY +FINDING +KEY +NAME +OWNER +ADVICE$/);
  });

  it("refuses usage errors with exit 2 before contacting the gateway", async () => {
    const offline = (args: string[]) => runCli(args, { home, env: { PORTCULLIS_URL: "http://127.0.0.1:9", PORTCULLIS_TOKEN: "unused" } });
    const cases: Array<[string[], string]> = [
      [["keys"], ""],
      [["keys", "frobnicate"], 'portcullis: unknown keys command "frobnicate"; see --help\n'],
      [["keys", "create", "--name", "x"], "portcullis: at least one --scope is required; see --help\n"],
      [["keys", "create", "--scope", "ai.query"], "portcullis: --name is required; see --help\n"],
      [["keys", "create", "--name", "x", "--scope", "ai.query", "--expires-in", "10x"], "portcullis: --expires-in takes a duration like 30d, 12h, 90m, 45s or 1h30m; see --help\n"],
      [["keys", "create", "--name", "x", "--scope", "ai.query", "--tier", "gold"], "portcullis: --tier must be basic, standard or premium; see --help\n"],
      [["keys", "create", "--name", "x", "--scope", "ai.query", "--no-expiry", "--expires-in", "1d"], "portcullis: give either --expires-in or --no-expiry, not both; see --help\n"],
      [["keys", "create", "--name", "x", "--scope", "ai.query", "--quiet", "--json"], "portcullis: give either --quiet or --json, not both; see --help\n"],
      [["keys", "list", "--user", "u-1", "--all"], "portcullis: give either --user or --all, not both; see --help\n"],
      [["keys", "list", "--status", "lost"], "portcullis: --status must be active, rotated, revoked or expired; see --help\n"],
      [["keys", "get"], "portcullis: missing ID; see --help\n"],
      [["keys", "get", "a", "b"], 'portcullis: unexpected argument "b"; see --help\n'],
      [["keys", "rotate", "k-1", "--grace", "soon"], "portcullis: --grace takes a duration like 30d, 12h, 90m, 45s or 1h30m; see --help\n"],
      [["keys", "revoke", "k-1"], "portcullis: --reason is required; see --help\n"],
      [["keys", "revoke-all"], "portcullis: --reason is required; see --help\n"],
      [["keys", "health", "--everyone"], "portcullis: Unknown option '--everyone'; see --help\n"],
    ];
    for (const [args, stderr] of cases) {
      const result = await offline(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout, args.join(" ")).toBe("");
      if (stderr !== "") expect(result.stderr, args.join(" ")).toBe(stderr);
      else expect(result.stderr).toMatch(/^Usage: portcullis keys <command>/);
    }
    for (const sub of ["create", "list", "get", "rotate", "revoke", "revoke-all", "health"]) {
      const help = await offline(["keys", sub, "--help"]);
      expect(help.code, sub).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: portcullis keys ${sub} `));
    }
  });
});
