import { access, chmod, cp, lstat, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import { join } from "node:path";
import { withDirLock } from "./dir-lock.ts";
import { runCommand } from "./run-command.ts";

/** The FerretDB release Portcullis builds and whose command-line flags it relies on. */
export const FERRETDB_VERSION = "v1.24.2";
const FERRETDB_MODULE = "github.com/FerretDB/FerretDB";
// Generous: the build itself takes ~100 s on two cores, and a waiter may queue behind it.
const BUILD_LOCK_TIMEOUT_MS = 15 * 60_000;

/** Where the FerretDB binary built by {@link buildFerretDb} lives inside a tools directory. */
export function ferretDbBinaryPath(toolsDir: string): string {
  return join(toolsDir, `ferretdb-${FERRETDB_VERSION}`, "ferretdb");
}

/**
 * Builds FerretDB from source with Go, once per tools directory, and returns the binary's path. If the
 * binary already exists it is returned at once; concurrent callers (other processes too) serialize on a
 * lock and all but the first find the finished binary.
 *
 * Why not `go install …@v1.24.2`: the module proxy refuses the deprecation lookup that `go install`
 * makes, and a binary built that way panics at start because the module ships an empty
 * `build/version/version.txt`. So the module source is downloaded, copied, given its version file and
 * built with `go build`.
 */
export async function buildFerretDb(options: { toolsDir: string; goPath: string; log: (line: string) => void }): Promise<string> {
  const binary = ferretDbBinaryPath(options.toolsDir);
  if (await isExecutable(binary)) return binary;
  await mkdir(options.toolsDir, { recursive: true, mode: 0o700 });
  const lockDir = join(options.toolsDir, `ferretdb-${FERRETDB_VERSION}.lock`);
  const lockOptions = {
    timeoutMs: BUILD_LOCK_TIMEOUT_MS,
    onWait: (pid: number | undefined) => options.log(`waiting for another process${pid ? ` (pid ${pid})` : ""} to finish building FerretDB ${FERRETDB_VERSION}…`),
  };
  return withDirLock(lockDir, lockOptions, async () => {
    if (await isExecutable(binary)) return binary; // built by whoever held the lock
    const started = Date.now();
    options.log(`building FerretDB ${FERRETDB_VERSION} with Go (once; takes a minute or two)…`);
    await buildInto(binary, options.goPath);
    options.log(`built FerretDB ${FERRETDB_VERSION} in ${Math.round((Date.now() - started) / 1000)} s: ${binary}`);
    return binary;
  });
}

async function buildInto(binary: string, goPath: string): Promise<void> {
  const versionDir = join(binary, "..");
  const srcDir = join(versionDir, "src");
  // Go must not pick up a surrounding workspace or the user's GOFLAGS (e.g. -mod=vendor).
  const env = { ...process.env, GOWORK: "off", GOFLAGS: "" };
  await mkdir(versionDir, { recursive: true, mode: 0o700 });

  // 1. Fetch the module source into Go's module cache (read-only there) and copy it somewhere writable.
  const download = JSON.parse(await runCommand(goPath, ["mod", "download", "-json", `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], { cwd: versionDir, env })) as {
    Dir?: string;
    Error?: string;
  };
  if (download.Error || !download.Dir) throw new Error(`go mod download ${FERRETDB_MODULE}@${FERRETDB_VERSION}: ${download.Error ?? "no Dir reported"}`);
  await removeTree(srcDir); // left over from an interrupted build
  await cp(download.Dir, srcDir, { recursive: true });
  await makeWritable(srcDir);

  // 2. The released module's version file is empty, and FerretDB refuses to start without a version.
  await writeFile(join(srcDir, "build", "version", "version.txt"), `${FERRETDB_VERSION}\n`);

  // 3. Build to a temporary name and rename, so a crash never leaves a half-written binary that looks done.
  const temporary = `${binary}.tmp-${process.pid}`;
  try {
    await runCommand(goPath, ["build", "-buildvcs=false", "-trimpath", "-o", temporary, "./cmd/ferretdb"], { cwd: srcDir, env });
    await chmod(temporary, 0o755);
    await rename(temporary, binary);
  } finally {
    await rm(temporary, { force: true });
    await removeTree(srcDir);
  }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function removeTree(dir: string): Promise<void> {
  try {
    await makeWritable(dir);
  } catch {
    return; // does not exist
  }
  await rm(dir, { recursive: true, force: true });
}

// Module cache copies are read-only (dirs 0555, files 0444); without write permission on a directory
// neither the version file can be written nor the tree removed.
async function makeWritable(path: string): Promise<void> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) return;
  await chmod(path, info.mode | 0o700);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(path)) await makeWritable(join(path, entry));
}
