import type { Config } from "../config/config.ts";
import { startEmbeddedDatabase } from "../store/embedded-db/index.ts";
import { openStore, type Store } from "../store/mongo-store.ts";

/** Bad usage or input the operator can fix; the message is one line and never holds a secret. */
export class CommandError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * One stderr line, never a stack. Domain, config and connection errors carry messages written to be
 * shown (naming the variable or host, never a password or credential), so they are printed as they are.
 */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, " ").trim().slice(0, 500) || "failed";
}

/**
 * Runs `work` against the gateway's database, whether or not a gateway is running: MONGODB_URI when
 * set, else the embedded database under PORTCULLIS_DATA_DIR (a running gateway's, or one started for the
 * duration and stopped afterwards).
 */
export async function withGatewayStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  const embedded =
    config.mongodbUri === undefined
      ? await startEmbeddedDatabase({ dataDir: config.dataDir, ...(config.toolsDir ? { toolsDir: config.toolsDir } : {}) })
      : undefined;
  let store: Store | undefined;
  try {
    store = await openStore({ uri: config.mongodbUri ?? embedded?.uri ?? "", dbName: config.dbName });
    return await work(store);
  } finally {
    await store?.close().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
  }
}
