import type { Config } from "../config/config.ts";
import { startEmbeddedDatabase } from "../embedded-db/index.ts";
import { openStore, type Store } from "../store/mongo-store.ts";

export { CommandError, oneLine } from "./command-error.ts";

/**
 * Runs `work` against the gateway's database, whether or not a gateway is running: MONGODB_URI when
 * set, else the embedded database under PORTCULLIS_DATA_DIR (a running gateway's, or one started for the
 * duration and stopped afterwards).
 */
export async function withGatewayStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  const embedded = config.mongodbUri === undefined ? await startEmbeddedDatabase({ dataDir: config.dataDir, ...(config.toolsDir ? { toolsDir: config.toolsDir } : {}) }) : undefined;
  let store: Store | undefined;
  try {
    store = await openStore({ uri: config.mongodbUri ?? embedded?.uri ?? "", dbName: config.dbName });
    return await work(store);
  } finally {
    await store?.close().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
  }
}
