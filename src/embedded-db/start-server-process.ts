import type { RunningServer, EmbeddedDatabaseKind } from "./embedded-database.ts";
import { findFreePort } from "./free-port.ts";
import { readLogTail, spawnServerProcess } from "./server-process.ts";
import { waitForServer } from "./wait-for-server.ts";

const READY_TIMEOUT_MS = 20_000;

/**
 * Starts a server binary on a free loopback port and waits until it answers `ping`. `args` receives the
 * port. If the server exits or stays silent, it is stopped and the error carries the tail of its log,
 * which is where the real reason (bad flag, locked files, port taken) is.
 */
export async function startServerProcess(options: { kind: EmbeddedDatabaseKind; command: string; args: (port: number) => readonly string[]; logFile: string }): Promise<RunningServer> {
  const port = await findFreePort();
  const uri = `mongodb://127.0.0.1:${port}/`;
  const child = await spawnServerProcess({ command: options.command, args: options.args(port), logFile: options.logFile });
  try {
    await waitForServer(uri, { timeoutMs: READY_TIMEOUT_MS, exited: child.exited });
  } catch (err) {
    await child.stop();
    const tail = await readLogTail(options.logFile);
    throw new Error(`${options.kind} failed to start: ${(err as Error).message}; log ${options.logFile} ends with:\n${tail}`, { cause: err });
  }
  return { kind: options.kind, uri, pid: child.pid, stop: () => child.stop() };
}
