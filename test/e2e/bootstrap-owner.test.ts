import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createPasswordHasher } from "../../src/domain/passwords/password-hasher.ts";
import { startEmbeddedDatabase } from "../../src/embedded-db/index.ts";
import { openStore, type Store } from "../../src/store/mongo-store.ts";
import { testDatabaseName } from "../helpers/database.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PASSWORD = "violet harbor quantum tangerine";

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node src/cli/main.ts bootstrap-owner …` as `npm run -s cli` does, with `stdin` piped in. */
function runCli(args: string[], options: { stdin?: string; env: Record<string, string> }): Promise<CliResult> {
  const child = spawn(process.execPath, ["src/cli/main.ts", "bootstrap-owner", ...args], {
    cwd: ROOT,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? "");
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("bootstrap-owner CLI", () => {
  const opened: Store[] = [];
  afterAll(async () => {
    for (const store of opened) {
      await store.db.dropDatabase();
      await store.close();
    }
  });

  /** A fresh database name, and its store for checking what the CLI wrote (dropped afterwards). */
  async function freshDatabase(): Promise<{ env: Record<string, string>; store: Store }> {
    const dbName = testDatabaseName(import.meta.url);
    const store = await openStore({ uri: inject("mongodbUri"), dbName });
    opened.push(store);
    return { env: { MONGODB_URI: inject("mongodbUri"), PORTCULLIS_DB_NAME: dbName }, store };
  }

  it("creates an owner from a password on stdin, stores only its argon2id hash, and refuses a second run", async () => {
    const { env, store } = await freshDatabase();
    const first = await runCli(["--username", "Root.Admin", "--email", "root@example.com"], { stdin: `${PASSWORD}\n`, env });
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toMatch(/^Created owner "Root.Admin" \(id [0-9a-f-]{36}\)\.\n$/);

    const users = await store.db.collection("users").find().toArray();
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ username: "Root.Admin", usernameKey: "root.admin", email: "root@example.com", role: "owner", disabled: false });
    expect(users[0]?.["passwordHash"]).toMatch(/^\$argon2id\$v=19\$/);
    // The trailing newline was not part of the password.
    expect((await createPasswordHasher().verify(users[0]?.["passwordHash"] as string, PASSWORD)).ok).toBe(true);
    const everything = JSON.stringify([users, await store.db.collection("audit_events").find().toArray()]);
    expect(everything).not.toContain(PASSWORD);
    expect(await store.db.collection("audit_events").countDocuments({ type: "user.bootstrap_owner", "actor.kind": "system" })).toBe(1);

    const second = await runCli(["--username", "someone.else"], { stdin: PASSWORD, env });
    expect(second.code).toBe(1);
    expect(second.stdout).toBe("");
    expect(second.stderr).toBe("portcullis bootstrap-owner: an owner already exists\n");
    expect(await store.db.collection("users").countDocuments()).toBe(1);
  });

  it("lets exactly one of several concurrent runs create an owner", async () => {
    const { env, store } = await freshDatabase();
    const runs = await Promise.all(["first", "second", "third", "fourth"].map((name) => runCli(["--username", `racer-${name}`], { stdin: PASSWORD, env })));
    expect(runs.filter((run) => run.code === 0)).toHaveLength(1);
    for (const refused of runs.filter((run) => run.code !== 0)) {
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^portcullis bootstrap-owner: an owner already exists[^\n]*\n$/);
    }
    expect(await store.db.collection("users").countDocuments()).toBe(1);
    expect(await store.db.collection("audit_events").countDocuments({ type: "user.bootstrap_owner" })).toBe(1);
  });

  it("--generate prints a strong password once, and it verifies", async () => {
    const { env, store } = await freshDatabase();
    const result = await runCli(["--username", "generated-owner", "--generate"], { env });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const password = /^Generated password \(shown only this once; store it now\): ([A-Za-z0-9_-]{24})$/m.exec(result.stdout)?.[1];
    expect(password).toBeDefined();
    const user = await store.db.collection("users").findOne({ usernameKey: "generated-owner" });
    expect(user).toMatchObject({ role: "owner" });
    expect((await createPasswordHasher().verify(user?.["passwordHash"] as string, password ?? "")).ok).toBe(true);
    expect(JSON.stringify(user)).not.toContain(password);
  });

  it("refuses a weak or empty password and bad usage with one line and no stack, storing nothing", async () => {
    const { env, store } = await freshDatabase();
    const weak = await runCli(["--username", "weakling"], { stdin: "password1234\n", env });
    expect(weak.code).toBe(1);
    expect(weak.stderr).toMatch(/^portcullis bootstrap-owner: The password is too easy to guess\.[^\n]*\n$/);
    expect(weak.stderr + weak.stdout).not.toContain("password1234");

    const empty = await runCli(["--username", "weakling"], { stdin: "\n", env });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^portcullis bootstrap-owner: no password on stdin[^\n]*\n$/);

    const badName = await runCli(["--username", "$where"], { stdin: PASSWORD, env });
    expect(badName.code).toBe(1);
    expect(badName.stderr).toMatch(/^portcullis bootstrap-owner: username may contain only [^\n]*\n$/);

    const missing = await runCli([], { stdin: PASSWORD, env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--username is required/);

    const badConfig = await runCli(["--username", "valid-name"], { stdin: PASSWORD, env: { ...env, PORTCULLIS_DB_NAME: "bad name!" } });
    expect(badConfig.code).toBe(1);
    expect(badConfig.stderr).toBe("portcullis bootstrap-owner: PORTCULLIS_DB_NAME: must be 1-38 letters, digits, _ or -\n");

    for (const result of [weak, empty, badName, missing, badConfig]) expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await store.db.collection("users").countDocuments()).toBe(0);
    // The refused runs left no claim behind: a good run still succeeds.
    expect(await store.db.collection("meta").countDocuments({ _id: "bootstrap-owner" } as object)).toBe(0);
    expect((await runCli(["--username", "valid-name"], { stdin: PASSWORD, env })).code).toBe(0);

    const help = await runCli(["--help"], { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: npm run -s cli -- bootstrap-owner --username NAME");
  });

  it("works without MONGODB_URI on the embedded database of PORTCULLIS_DATA_DIR", { timeout: 120_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bootstrap-"));
    try {
      const env: Record<string, string> = { PORTCULLIS_DATA_DIR: dataDir };
      if (process.env["PORTCULLIS_TOOLS_DIR"]) env["PORTCULLIS_TOOLS_DIR"] = process.env["PORTCULLIS_TOOLS_DIR"];
      const result = await runCli(["--username", "embedded-owner"], { stdin: PASSWORD, env });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Created owner "embedded-owner"/);

      // The CLI stopped the server it started; start it again to look at what it wrote.
      const database = await startEmbeddedDatabase({ dataDir, ...(env["PORTCULLIS_TOOLS_DIR"] ? { toolsDir: env["PORTCULLIS_TOOLS_DIR"] } : {}) });
      try {
        expect(database.owned).toBe(true);
        const store = await openStore({ uri: database.uri, dbName: "portcullis" });
        try {
          expect(await store.db.collection("users").findOne({ usernameKey: "embedded-owner" })).toMatchObject({ role: "owner" });
        } finally {
          await store.close();
        }
      } finally {
        await database.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
