import { join } from "node:path";
import type { RunningServer } from "./embedded-database.ts";
import { findFreePort } from "./free-port.ts";

/**
 * Starts a `mongod` fetched by mongodb-memory-server (downloaded on first use into its own cache). Despite
 * the package's name the data is kept: WiredTiger files in `<dataDir>/db/`, which a stop never deletes.
 * The package watches for its parent's death itself, so no exit handler is needed here.
 */
export async function startMemoryServer(options: { dataDir: string }): Promise<RunningServer> {
  // Loaded lazily: only machines without mongod and Go pay for it.
  const { MongoMemoryServer } = await import("mongodb-memory-server-core");
  const server = await MongoMemoryServer.create({
    instance: { dbPath: join(options.dataDir, "db"), storageEngine: "wiredTiger", ip: "127.0.0.1", port: await findFreePort() },
  });
  const pid = server.instanceInfo?.instance.mongodProcess?.pid;
  if (pid === undefined) {
    await server.stop({ doCleanup: false });
    throw new Error("mongodb-memory-server started without a mongod process");
  }
  return {
    kind: "mongodb-memory-server",
    uri: server.getUri(),
    pid,
    async stop() {
      await server.stop({ doCleanup: false });
    },
  };
}
