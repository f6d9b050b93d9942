import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../src/config/config.ts";
import { createHealthStatus, type HealthStatus } from "../../src/health/health-status.ts";
import { servedServiceNames } from "../../src/handlers/routes.ts";
import { createLogger } from "../../src/log/logger.ts";
import { loadDescriptorIndex } from "../../src/reflection/descriptor-index.ts";
import { createServer, type PortcullisServer, type ServerDeps } from "../../src/server.ts";

export interface TestServer {
  readonly server: PortcullisServer;
  readonly config: Config;
  readonly health: HealthStatus;
  readonly port: number;
  readonly baseUrl: string;
  /** Every log line written so far, parsed. */
  readonly logLines: () => Array<Record<string, unknown>>;
  /** The raw log output. */
  readonly logText: () => string;
  close(): Promise<void>;
}

/**
 * Starts the real server (createServer, the same factory main.ts uses) on 127.0.0.1 and an ephemeral
 * port, with its log captured in memory.
 */
export async function startTestServer(
  options: { env?: Record<string, string>; deps?: Partial<Pick<ServerDeps, "authenticator" | "freshMfa">> } = {},
): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-test-"));
  const config = loadConfig({ PORTCULLIS_PORT: "0", PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_LOG_LEVEL: "debug", ...options.env });
  let text = "";
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString("utf8");
      callback();
    },
  });
  const logger = createLogger({ level: config.logLevel, destination });
  const health = createHealthStatus(servedServiceNames({ reflection: config.reflection }));
  health.setDatabaseReachable(true);
  const server = createServer({ logger, health, descriptorIndex: loadDescriptorIndex(), ...options.deps }, config);
  const { port } = await server.listen();
  return {
    server,
    config,
    health,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    logText: () => text,
    logLines: () =>
      text
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    async close() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
