// The gateway process: configuration → database → server, and a graceful stop on SIGTERM/SIGINT.
import { mkdir } from "node:fs/promises";
import { ConfigError, type Config } from "./config/config.ts";
import { createGateway } from "./app/gateway.ts";
import { startGatewayServer } from "./app/gateway-server.ts";
import { loadGatewayConfig } from "./app/gateway-settings.ts";
import { countArrayBuffersInGlobalHeapLimit } from "./app/heap-tuning.ts";
import { KeyringError, loadOrCreateKeyring } from "./keys/keyring.ts";
import { createLogger, type Logger } from "./log/logger.ts";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "./embedded-db/index.ts";
import { openStore } from "./store/mongo-store.ts";

async function main(): Promise<void> {
  countArrayBuffersInGlobalHeapLimit();
  let config: Config;
  try {
    config = loadGatewayConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`portcullis: configuration error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  try {
    await run(config, logger);
  } catch (error) {
    if (error instanceof KeyringError) {
      logger.fatal(error.message);
      process.stderr.write(`portcullis: ${error.message}\n`);
    } else {
      logger.fatal({ err: error }, "start failed");
    }
    process.exit(1);
  }
}

async function run(config: Config, logger: Logger): Promise<void> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const keyring = await loadOrCreateKeyring(config.keyFile, config.suppliedKeys);

  let embedded: EmbeddedDatabase | undefined;
  let uri = config.mongodbUri;
  if (uri === undefined) {
    embedded = await startEmbeddedDatabase({
      dataDir: config.dataDir,
      log: (line) => logger.info(line),
      ...(config.toolsDir ? { toolsDir: config.toolsDir } : {}),
    });
    uri = embedded.uri;
    logger.info({ database: embedded.kind, dataDir: config.dataDir }, `embedded database: ${embedded.kind}`);
  } else {
    logger.info("database: MONGODB_URI");
  }
  const store = await openStore({ uri, dbName: config.dbName });
  const gateway = await createGateway({ store, keyring, config, logger });
  const { audit } = gateway;
  if (!(await gateway.anyOwnerExists())) {
    logger.warn("no owner account exists yet: create one with `npm run -s cli -- bootstrap-owner --username NAME` (password on stdin, or --generate)");
  }
  const { address, close: closeServer } = await startGatewayServer({ config, logger, capabilities: gateway.serverDeps, probeDatabase: () => store.ping() });
  gateway.warmUp();
  audit.record({ type: "system.start", outcome: "success", actor: { kind: "system" } });
  logger.info({ host: address.host, port: address.port, tls: config.tls !== undefined }, `listening on ${address.host}:${address.port}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    // Jobs running here get the same grace as calls: finished, or handed to another instance at once.
    const jobsDrained = gateway.drainJobs(config.shutdownTimeoutMs);
    await closeServer();
    await jobsDrained;
    audit.record({ type: "system.stop", outcome: "success", actor: { kind: "system" }, reason: signal });
    await gateway.stop();
    await store.close();
    await embedded?.stop();
    logger.info("stopped");
    logger.flush();
    process.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      stop(signal).catch((error: unknown) => {
        logger.fatal({ err: error }, "shutdown failed");
        process.exit(1);
      });
    });
  }
}

await main();
