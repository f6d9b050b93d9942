import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isProcessAlive } from "./process-alive.ts";

const OWNER_FILE = "owner";
// A lock dir without an owner file is a holder that died between mkdir and writing its pid.
const ORPHAN_AFTER_MS = 10_000;
const POLL_MS = 250;

/**
 * Runs `fn` while holding an exclusive cross-process lock, implemented as an atomically created
 * directory holding the owner's pid. A lock whose owner pid is dead is stale and taken over, so a crash
 * never wedges later runs. Throws after `timeoutMs` of waiting for a live owner.
 *
 * `onWait` is called once, when the lock is found held, so callers can say why they are waiting.
 */
export async function withDirLock<T>(lockDir: string, options: { timeoutMs: number; onWait?: (ownerPid: number | undefined) => void }, fn: () => Promise<T>): Promise<T> {
  await acquire(lockDir, options);
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function acquire(lockDir: string, options: { timeoutMs: number; onWait?: (ownerPid: number | undefined) => void }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let announced = false;
  for (;;) {
    try {
      await mkdir(lockDir, { mode: 0o700 });
      await writeFile(join(lockDir, OWNER_FILE), String(process.pid), { mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = await readOwner(lockDir);
    if (await isStale(lockDir, owner)) {
      // Rename first so that of two processes clearing the same stale lock only one removes it.
      const doomed = `${lockDir}.stale-${process.pid}-${Date.now()}`;
      await rename(lockDir, doomed).then(
        () => rm(doomed, { recursive: true, force: true }),
        () => undefined,
      );
      continue;
    }
    if (!announced) {
      announced = true;
      options.onWait?.(owner);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for lock ${lockDir}` +
          (owner === undefined ? "" : ` held by pid ${owner}`) +
          "; if no other Portcullis process is running, remove that directory",
      );
    }
    await sleep(POLL_MS);
  }
}

async function readOwner(lockDir: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(join(lockDir, OWNER_FILE), "utf8"), 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function isStale(lockDir: string, owner: number | undefined): Promise<boolean> {
  if (owner !== undefined) return !isProcessAlive(owner);
  try {
    return Date.now() - (await stat(lockDir)).mtimeMs > ORPHAN_AFTER_MS;
  } catch {
    return false; // vanished meanwhile: the next mkdir attempt decides
  }
}
