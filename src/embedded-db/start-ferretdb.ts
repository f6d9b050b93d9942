import { join } from "node:path";
import type { RunningServer } from "./embedded-database.ts";
import { buildFerretDb } from "./ferretdb-build.ts";
import { startServerProcess } from "./start-server-process.ts";

/**
 * Starts FerretDB (1.x) with its SQLite backend storing under `<dataDir>/db/`, building it first when the
 * candidate says so. Every flag whose default is unsuitable is passed explicitly: the default listen and
 * debug ports (27017, 8088) would collide between instances, and telemetry would report home.
 */
export async function startFerretDb(options: { binaryPath: string; buildWithGo?: string; toolsDir: string; dataDir: string; log: (line: string) => void }): Promise<RunningServer> {
  const binary = options.buildWithGo ? await buildFerretDb({ toolsDir: options.toolsDir, goPath: options.buildWithGo, log: options.log }) : options.binaryPath;
  const dbDir = join(options.dataDir, "db");
  return startServerProcess({
    kind: "ferretdb",
    command: binary,
    args: (port) => [
      "--handler=sqlite",
      // The trailing slash matters: FerretDB treats the URL as a directory holding one file per database.
      `--sqlite-url=file:${dbDir}/`,
      `--state-dir=${dbDir}`,
      `--listen-addr=127.0.0.1:${port}`,
      "--debug-addr=-",
      "--telemetry=disable",
    ],
    logFile: join(options.dataDir, "logs", "ferretdb.log"),
  });
}
