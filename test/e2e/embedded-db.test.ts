import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MongoClient } from "mongodb";
import { afterEach, describe, expect, it, vi } from "vitest";
import { chooseDatabaseServer, startEmbeddedDatabase, type EmbeddedDatabase } from "../../src/embedded-db/index.ts";
import { findOnPath } from "../../src/embedded-db/find-executable.ts";
import { isProcessAlive } from "../../src/embedded-db/process-alive.ts";
import { pingServer } from "../../src/embedded-db/wait-for-server.ts";

describe("chooseDatabaseServer", () => {
  const target = "/tools/ferretdb-v1.24.2/ferretdb";

  it("prefers mongod, then FerretDB, then mongodb-memory-server", () => {
    const candidates = chooseDatabaseServer({ mongodPath: "/bin/mongod", builtFerretDbPath: target, goPath: "/bin/go", ferretDbBuildTarget: target });
    expect(candidates).toEqual([{ kind: "mongod", mongodPath: "/bin/mongod" }, { kind: "ferretdb", binaryPath: target }, { kind: "mongodb-memory-server" }]);
  });

  it("builds FerretDB with Go only when no FerretDB binary exists", () => {
    expect(chooseDatabaseServer({ goPath: "/bin/go", ferretDbBuildTarget: target })).toEqual([{ kind: "ferretdb", binaryPath: target, buildWithGo: "/bin/go" }, { kind: "mongodb-memory-server" }]);
    expect(chooseDatabaseServer({ goPath: "/bin/go", ferretDbOnPath: "/usr/bin/ferretdb", ferretDbBuildTarget: target })[0]).toEqual({
      kind: "ferretdb",
      binaryPath: "/usr/bin/ferretdb",
    });
  });

  it("prefers the pinned tools-dir build over a ferretdb on PATH", () => {
    const [first] = chooseDatabaseServer({ builtFerretDbPath: target, ferretDbOnPath: "/usr/bin/ferretdb", ferretDbBuildTarget: target });
    expect(first).toEqual({ kind: "ferretdb", binaryPath: target });
  });

  it("falls back to mongodb-memory-server alone when nothing else exists", () => {
    expect(chooseDatabaseServer({ ferretDbBuildTarget: target })).toEqual([{ kind: "mongodb-memory-server" }]);
  });
});

// A killed server whose parent is gone may linger as a zombie until init reaps it: dead all the same.
function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("startEmbeddedDatabase", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function throwawayDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-embedded-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async function start(dataDir: string, log: string[] = []): Promise<EmbeddedDatabase> {
    const database = await startEmbeddedDatabase({ dataDir, log: (line) => log.push(line) });
    cleanups.push(() => database.stop());
    return database;
  }

  async function withClient<T>(uri: string, fn: (client: MongoClient) => Promise<T>): Promise<T> {
    const client = new MongoClient(uri, { directConnection: true });
    try {
      return await fn(client);
    } finally {
      await client.close();
    }
  }

  async function statePid(dataDir: string): Promise<number> {
    return (JSON.parse(await readFile(join(dataDir, "embedded-db.json"), "utf8")) as { pid: number }).pid;
  }

  it("keeps data across a stop and a restart in the same directory", async () => {
    const dataDir = await throwawayDir();
    const log: string[] = [];
    const first = await start(dataDir, log);
    expect(first.owned).toBe(true);
    expect(first.uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/$/);
    if (!(await findOnPath("mongod"))) expect(first.kind).toBe("ferretdb");
    expect(log.some((line) => line.startsWith(`started ${first.kind}`))).toBe(true);
    expect((await stat(join(dataDir, "db"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dataDir, "logs"))).mode & 0o777).toBe(0o700);
    const pid = await statePid(dataDir);

    await withClient(first.uri, (client) => client.db("persist").collection("things").insertOne({ name: "kept" }));
    await first.stop();
    expect(isProcessAlive(pid)).toBe(false);
    await expect(stat(join(dataDir, "embedded-db.json"))).rejects.toThrow();
    expect(await pingServer(first.uri, 500)).toBe(false);

    const second = await start(dataDir);
    expect(second.owned).toBe(true);
    const found = await withClient(second.uri, (client) => client.db("persist").collection("things").findOne({ name: "kept" }));
    expect(found).toMatchObject({ name: "kept" });
  });

  it("reuses the server already running for a directory, and does not stop it", async () => {
    const dataDir = await throwawayDir();
    const owner = await start(dataDir);
    const log: string[] = [];
    const borrower = await start(dataDir, log);
    expect(borrower).toMatchObject({ uri: owner.uri, kind: owner.kind, owned: false });
    expect(log.join("\n")).toContain("already running");

    await borrower.stop();
    expect(await pingServer(owner.uri, 2000)).toBe(true);
  });

  it("ignores a state file whose process is gone", async () => {
    const dataDir = await throwawayDir();
    const exited = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => exited.once("exit", resolve));
    await writeFile(join(dataDir, "embedded-db.json"), JSON.stringify({ kind: "ferretdb", uri: "mongodb://127.0.0.1:9/", pid: exited.pid }));

    const database = await start(dataDir);
    expect(database.owned).toBe(true);
    expect(await statePid(dataDir)).not.toBe(exited.pid);
  });

  it.each([
    ["exits without stopping it", "process.exit(0)"],
    ["is killed outright (SIGKILL)", 'process.kill(process.pid, "SIGKILL")'],
  ])("kills the server when the owning process %s", async (_, ending) => {
    const dataDir = await throwawayDir();
    const launcher = fileURLToPath(new URL("../../src/embedded-db/index.ts", import.meta.url));
    const script = `
      const { startEmbeddedDatabase } = await import(${JSON.stringify(launcher)});
      await startEmbeddedDatabase({ dataDir: ${JSON.stringify(dataDir)} });
      ${ending};`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise((resolve) => child.once("exit", resolve));
    expect(stderr).toBe("");

    const pid = await statePid(dataDir);
    await vi.waitFor(() => expect(isProcessAlive(pid) && !isZombie(pid)).toBe(false), { timeout: 10_000 });
    // The state file outlives the crash, but names a dead pid: the next start owns a fresh server.
    const next = await start(dataDir);
    expect(next.owned).toBe(true);
  });
});
