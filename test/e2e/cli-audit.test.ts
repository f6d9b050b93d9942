import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { runCli, type CliResult } from "../helpers/cli-process.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

interface EventJson {
  sequence: string;
  type: string;
  hash: string;
  prevHash: string;
}

describe("portcullis audit", () => {
  let gw: IdentityServer;
  let home: string;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000", PORTCULLIS_AUDIT_FAILED_LOGINS_PER_USER: "3" } });
    home = await mkdtemp(join(tmpdir(), "portcullis-cli-audit-"));
    for (const [name, role] of [
      ["ada", "admin"],
      ["uma", "user"],
    ] as const) {
      await gw.createUser(name, role);
      files[name] = join(home, name, "credentials.json");
      const login = await runCli(["login", "--username", name, "--url", gw.baseUrl], { home, env: { PORTCULLIS_CREDENTIALS_FILE: files[name] }, stdin: testPassword(name) });
      expect(login.stderr).toBe("");
    }
    await gw.audit.flush();
  });
  afterAll(async () => {
    await gw.close();
    await rm(home, { recursive: true, force: true });
  });

  const as = (user: string, args: string[]) => runCli(args, { home, env: { PORTCULLIS_CREDENTIALS_FILE: files[user]! } });
  const ok = (result: CliResult) => {
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    return result.stdout;
  };

  it("query: filters, JSON with sequence and hash, a table by default; PERMISSION_DENIED for a user", async () => {
    const { events } = JSON.parse(ok(await as("ada", ["audit", "query", "--type", "auth.login", "--limit", "5", "--json"]))) as { events: EventJson[] };
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.every((e) => e.type === "auth.login" && /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
    expect(Number(events[0]!.sequence)).toBeGreaterThan(Number(events.at(-1)!.sequence)); // newest first
    const table = ok(await as("ada", ["audit", "query", "--type", "auth.*", "--outcome", "success", "--order", "asc"]));
    expect(table.split("\n")[0]).toMatch(/^SEQ\s+TIME\s+TYPE\s+OUTCOME\s+ACTOR/);
    expect(table).toContain("auth.login");

    const denied = await as("uma", ["audit", "query"]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^portcullis: permission audit\.read required \(permission_denied\)\n$/);
    const usage = await as("ada", ["audit", "query", "--since", "yesterday-ish"]);
    expect(usage.code).toBe(2);
  });

  it("tail: replays after a sequence and resumes without loss or repeats, then follows live events", async () => {
    const first = ok(await as("ada", ["audit", "tail", "--after", "0", "--count", "3", "--json"]));
    const sequences = first
      .trim()
      .split("\n")
      .map((line) => Number((JSON.parse(line) as EventJson).sequence));
    expect(sequences).toEqual([1, 2, 3]);
    const resumed = ok(await as("ada", ["audit", "tail", "--after", "3", "--count", "2", "--json"]));
    expect(
      resumed
        .trim()
        .split("\n")
        .map((line) => Number((JSON.parse(line) as EventJson).sequence)),
    ).toEqual([4, 5]);

    const live = as("ada", ["audit", "tail", "--type", "test.cli_tail", "--count", "1", "--json"]);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the CLI has started and is waiting
    await gw.audit.recordNow({ type: "test.cli_tail", outcome: "success", reason: "live" });
    const event = JSON.parse(ok(await live).trim()) as EventJson & { reason: string };
    expect(event).toMatchObject({ type: "test.cli_tail", reason: "live" });

    expect((await as("ada", ["audit", "tail", "--after", "seven"])).code).toBe(2);
  });

  it("export writes a 0600 file only when complete, which verify checks offline; an edited copy is caught", async () => {
    const file = join(home, "export.jsonl");
    ok(await as("ada", ["audit", "export", "--format", "jsonl", "--output", file]));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const verified = await runCli(["audit", "verify", file, "--url", gw.baseUrl], { home });
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^OK: \d+ events/);

    const lines = (await readFile(file, "utf8")).split("\n");
    const tamperedLine = JSON.parse(lines[1]!) as Record<string, unknown>;
    expect(tamperedLine["type"]).toEqual(expect.any(String));
    const edited = lines.map((line, i) => (i === 1 ? JSON.stringify({ ...tamperedLine, type: "nothing.to_see_here" }) : line)).join("\n");
    await writeFile(join(home, "edited.jsonl"), edited);
    const caught = await runCli(["audit", "verify", join(home, "edited.jsonl"), "--url", gw.baseUrl], { home });
    expect(caught.code).toBe(1);
    expect(caught.stdout).toMatch(/^ALTERED/);

    const csv = ok(await as("ada", ["audit", "export", "--format", "csv", "--type", "auth.login"]));
    expect(csv.split("\r\n")[0]).toMatch(/^sequence,/);
    expect((await as("ada", ["audit", "export"])).code).toBe(2);
  });

  it("suspicious: findings over a window, as a table or JSON", async () => {
    const auth = gw.client(AuthService);
    for (let i = 0; i < 3; i++) await auth.login({ username: "uma", password: "not the password at all" }).catch(() => undefined);
    await gw.audit.flush();
    const table = ok(await as("ada", ["audit", "suspicious", "--since", "1h"]));
    expect(table).toMatch(/^Analysed \d+ events/);
    expect(table).toContain("failed-logins-per-user");
    const parsed = JSON.parse(ok(await as("ada", ["audit", "suspicious", "--json", "--min-severity", "low"]))) as { findings: Array<{ kind: string }>; eventsAnalyzed: string };
    expect(parsed.findings.map((f) => f.kind)).toContain("SUSPICIOUS_ACTIVITY_KIND_FAILED_LOGINS_PER_USER");
    expect((await as("ada", ["audit", "suspicious", "--min-severity", "apocalyptic"])).code).toBe(2);
  });
});
