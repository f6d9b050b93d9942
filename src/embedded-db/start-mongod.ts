import { join } from "node:path";
import type { RunningServer } from "./embedded-database.ts";
import { startServerProcess } from "./start-server-process.ts";

/** Starts a `mongod` with its files in `<dataDir>/db/`, listening on loopback only. */
export function startMongod(options: { mongodPath: string; dataDir: string }): Promise<RunningServer> {
  return startServerProcess({
    kind: "mongod",
    command: options.mongodPath,
    args: (port) => ["--dbpath", join(options.dataDir, "db"), "--bind_ip", "127.0.0.1", "--port", String(port)],
    logFile: join(options.dataDir, "logs", "mongod.log"),
  });
}
