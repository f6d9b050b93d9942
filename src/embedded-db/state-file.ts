import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { EmbeddedDatabaseKind } from "./embedded-database.ts";

/**
 * `<dataDir>/embedded-db.json`: which server the owner of a data directory started, so that other
 * processes on the same directory (the admin CLI next to a running gateway) use it instead of starting
 * a second server on the same files.
 */
export interface EmbeddedDatabaseState {
  readonly kind: EmbeddedDatabaseKind;
  readonly uri: string;
  /** The server process, not the process that started it. */
  readonly pid: number;
}

const KINDS: readonly string[] = ["mongod", "ferretdb", "mongodb-memory-server"];

export function stateFilePath(dataDir: string): string {
  return join(dataDir, "embedded-db.json");
}

/** The recorded state, or undefined when there is none or it is unreadable (treated as absent). */
export async function readState(dataDir: string): Promise<EmbeddedDatabaseState | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(stateFilePath(dataDir), "utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { kind, uri, pid } = parsed as Record<string, unknown>;
  if (typeof kind !== "string" || !KINDS.includes(kind) || typeof uri !== "string" || typeof pid !== "number") return undefined;
  return { kind: kind as EmbeddedDatabaseKind, uri, pid };
}

/** Writes the state atomically (temp file + rename) so a reader never sees half a file. */
export async function writeState(dataDir: string, state: EmbeddedDatabaseState): Promise<void> {
  const path = stateFilePath(dataDir);
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

/** Removes the state file if it still describes the server with `pid` (and so is ours to remove). */
export async function removeState(dataDir: string, pid?: number): Promise<void> {
  if (pid !== undefined) {
    const current = await readState(dataDir);
    if (current && current.pid !== pid) return;
  }
  await rm(stateFilePath(dataDir), { force: true });
}
