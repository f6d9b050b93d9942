import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../src/config/config.ts";
import { startGatewayServer } from "../../src/app/gateway-server.ts";
import type { HealthStatus } from "../../src/health/health-status.ts";
import { createLogger } from "../../src/log/logger.ts";
import type { PortcullisServer, ServerDeps } from "../../src/transport/server.ts";

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
 * Starts the real server (startGatewayServer, as main.ts does) on 127.0.0.1 and an ephemeral port, with
 * no identity behind it (unless `deps` brings an authenticator) and its log captured in memory.
 */
export async function startTestServer(options: { env?: Record<string, string>; deps?: Partial<Pick<ServerDeps, "authenticator" | "freshMfa">> } = {}): Promise<TestServer> {
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
  const { server, health, address, close } = await startGatewayServer({ config, logger, ...(options.deps ? { capabilities: options.deps } : {}) });
  const { port } = address;
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
      await close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
