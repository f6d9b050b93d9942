import { chmod, mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { EmbeddedDatabase, EmbeddedDatabaseKind, RunningServer } from "./embedded-database.ts";
import { chooseDatabaseServer, describeCandidate, type ServerCandidate } from "./choose-server.ts";
import { withDirLock } from "./dir-lock.ts";
import { ferretDbBinaryPath } from "./ferretdb-build.ts";
import { findOnPath, isExecutableFile } from "./find-executable.ts";
import { isProcessAlive } from "./process-alive.ts";
import { startFerretDb } from "./start-ferretdb.ts";
import { startMemoryServer } from "./start-memory-server.ts";
import { startMongod } from "./start-mongod.ts";
import { readState, removeState, stateFilePath, writeState, type EmbeddedDatabaseState } from "./state-file.ts";
import { defaultToolsDir } from "./tools-dir.ts";
import { pingServer } from "./wait-for-server.ts";

// Held while a server is chosen and started, which may include building FerretDB (~100 s cold).
const START_LOCK_TIMEOUT_MS = 15 * 60_000;
const REUSE_PING_TIMEOUT_MS = 2000;

/**
 * Provides a local MongoDB-compatible server for a data directory: used by the gateway when MONGODB_URI
 * is unset, and by the tests with a throwaway directory. Data lives in `<dataDir>/db/`, server logs in
 * `<dataDir>/logs/`.
 *
 * 1. If `<dataDir>/embedded-db.json` names a live server that answers `ping`, that server is reused and
 *    the result is not owned (`stop()` does nothing): the admin CLI shares a running gateway's database.
 * 2. Otherwise the first candidate that starts wins, in the order of {@link chooseDatabaseServer}: a
 *    `mongod` on PATH, FerretDB (built once with Go into `toolsDir` if needed), mongodb-memory-server.
 *    The server listens on a free loopback port; its choice is reported through `log`.
 * 3. If none starts, the error lists what was tried and why each failed, and how to fix it.
 *
 * Concurrent calls on the same data directory (also from other processes) are serialized, so only one
 * server ever runs on a directory's files. `toolsDir` defaults to {@link defaultToolsDir}.
 */
export async function startEmbeddedDatabase(options: { dataDir: string; log?: (line: string) => void; toolsDir?: string }): Promise<EmbeddedDatabase> {
  const log = options.log ?? (() => undefined);
  const dataDir = resolve(options.dataDir);
  await makePrivateDir(dataDir);
  await makePrivateDir(join(dataDir, "db"));
  await makePrivateDir(join(dataDir, "logs"));

  const lockOptions = { timeoutMs: START_LOCK_TIMEOUT_MS, onWait: () => log(`waiting for another process starting the database in ${dataDir}…`) };
  return withDirLock(join(dataDir, "embedded-db.lock"), lockOptions, async () => {
    const running = await findRunningServer(dataDir);
    if (running) {
      log(`using the ${running.kind} server at ${running.uri} already running for ${dataDir} (pid ${running.pid})`);
      return { uri: running.uri, kind: running.kind, owned: false, stop: async () => undefined };
    }
    const toolsDir = resolve(options.toolsDir ?? defaultToolsDir());
    const server = await startFirstCandidate(await discoverCandidates(toolsDir), { dataDir, toolsDir, log });
    try {
      await writeState(dataDir, { kind: server.kind, uri: server.uri, pid: server.pid });
    } catch (err) {
      await server.stop(); // unrecorded, nobody else could find it or know it holds the files
      throw err;
    }
    log(`started ${server.kind} at ${server.uri} (pid ${server.pid}), data in ${join(dataDir, "db")}`);
    return ownedDatabase(server, dataDir);
  });
}

async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

async function discoverCandidates(toolsDir: string): Promise<ServerCandidate[]> {
  const built = ferretDbBinaryPath(toolsDir);
  const [mongodPath, ferretDbOnPath, goPath, builtExists] = await Promise.all([findOnPath("mongod"), findOnPath("ferretdb"), findOnPath("go"), isExecutableFile(built)]);
  return chooseDatabaseServer({
    ...(mongodPath ? { mongodPath } : {}),
    ...(ferretDbOnPath ? { ferretDbOnPath } : {}),
    ...(goPath ? { goPath } : {}),
    ...(builtExists ? { builtFerretDbPath: built } : {}),
    ferretDbBuildTarget: built,
  });
}

async function startFirstCandidate(candidates: readonly ServerCandidate[], context: { dataDir: string; toolsDir: string; log: (line: string) => void }): Promise<RunningServer> {
  const failures: string[] = [];
  for (const candidate of candidates) {
    context.log(`starting embedded database: ${describeCandidate(candidate)}`);
    try {
      return await startCandidate(candidate, context);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      failures.push(`- ${describeCandidate(candidate)}: ${reason}`);
      context.log(`${candidate.kind} did not start: ${reason.split("\n")[0]}`);
    }
  }
  throw new Error(
    [
      "No embedded database could be started. Tried, in order:",
      ...(candidates.some((c) => c.kind === "mongod") ? [] : ["- mongod: not found on PATH"]),
      ...(candidates.some((c) => c.kind === "ferretdb") ? [] : ["- ferretdb: not built and no Go toolchain (`go`) on PATH to build it"]),
      ...failures,
      "Fix: install Go (https://go.dev/dl/) so Portcullis can build FerretDB once, or install mongod, " + "or set MONGODB_URI to an existing MongoDB.",
    ].join("\n"),
  );
}

function startCandidate(candidate: ServerCandidate, context: { dataDir: string; toolsDir: string; log: (line: string) => void }): Promise<RunningServer> {
  switch (candidate.kind) {
    case "mongod":
      return startMongod({ mongodPath: candidate.mongodPath, dataDir: context.dataDir });
    case "ferretdb":
      return startFerretDb({
        binaryPath: candidate.binaryPath,
        ...(candidate.buildWithGo ? { buildWithGo: candidate.buildWithGo } : {}),
        ...context,
      });
    case "mongodb-memory-server":
      return startMemoryServer({ dataDir: context.dataDir });
  }
}

/**
 * The server recorded for this directory, if it is still running. A live pid whose server does not
 * answer is either a server still starting or hung (starting a second one on the same files would
 * corrupt them, so that is an error) or an unrelated process that inherited the pid (state is stale).
 */
async function findRunningServer(dataDir: string): Promise<EmbeddedDatabaseState | undefined> {
  const state = await readState(dataDir);
  if (!state) return undefined;
  if (isProcessAlive(state.pid)) {
    if (await pingServer(state.uri, REUSE_PING_TIMEOUT_MS)) return state;
    if (await looksLikeServer(state.pid, state.kind)) {
      throw new Error(
        `the ${state.kind} server recorded in ${stateFilePath(dataDir)} (pid ${state.pid}) is running but does not answer at ${state.uri}; ` +
          "stop that process (or remove the file if it is not a database server) and try again",
      );
    }
  }
  await removeState(dataDir, state.pid);
  return undefined;
}

// Linux exposes the command line; elsewhere assume the worst (that it is our server) and let the user decide.
async function looksLikeServer(pid: number, kind: EmbeddedDatabaseKind): Promise<boolean> {
  let commandLine: string;
  try {
    commandLine = await readFile(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return process.platform !== "linux";
  }
  return commandLine.includes(kind === "ferretdb" ? "ferretdb" : "mongod");
}

function ownedDatabase(server: RunningServer, dataDir: string): EmbeddedDatabase {
  let stopping: Promise<void> | undefined;
  return {
    uri: server.uri,
    kind: server.kind,
    owned: true,
    stop() {
      stopping ??= server.stop().finally(() => removeState(dataDir, server.pid));
      return stopping;
    },
  };
}
