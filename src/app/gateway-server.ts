import type { Config } from "../config/config.ts";
import { servedServiceNames } from "../handlers/routes.ts";
import { createHealthStatus, type HealthStatus } from "../health/health-status.ts";
import type { Logger } from "../log/logger.ts";
import { loadDescriptorIndex } from "../reflection/descriptor-index.ts";
import { createServer, type PortcullisServer, type ServerDeps } from "../transport/server.ts";

/** A listening gateway server and what serves its health. */
export interface GatewayServer {
  readonly server: PortcullisServer;
  readonly health: HealthStatus;
  /** Where it listens (port 0 in the configuration: the port the system chose). */
  readonly address: { readonly host: string; readonly port: number };
  /** Stops the database probe, then closes the server gracefully (see PortcullisServer.close). */
  close(): Promise<void>;
}

const DATABASE_PROBE_INTERVAL_MS = 5_000;

/**
 * Builds the server (transport/server.ts) with health and reflection as configured and starts listening:
 * the one server setup of main.ts and of the tests. `capabilities` are the gateway's (createGateway's
 * serverDeps); without them no credential is accepted, as a bare server for transport tests wants.
 */
export async function startGatewayServer(deps: {
  config: Config;
  logger: Logger;
  capabilities?: Partial<Pick<ServerDeps, "authenticator" | "freshMfa" | "services" | "jwks" | "audit">>;
  /** Checked every 5 s; health answers NOT_SERVING while it fails. Without it the database counts as reachable. */
  probeDatabase?: () => Promise<unknown>;
}): Promise<GatewayServer> {
  const { config, logger } = deps;
  const health = createHealthStatus(servedServiceNames({ reflection: config.reflection }));
  health.setDatabaseReachable(true);
  const probeDatabase = deps.probeDatabase;
  const probe = probeDatabase
    ? setInterval(() => {
        probeDatabase().then(
          () => health.setDatabaseReachable(true),
          (error: unknown) => {
            logger.warn({ err: error }, "database unreachable");
            health.setDatabaseReachable(false);
          },
        );
      }, DATABASE_PROBE_INTERVAL_MS)
    : undefined;
  probe?.unref();
  const server = createServer({ logger, health, descriptorIndex: config.reflection ? loadDescriptorIndex() : undefined, ...deps.capabilities }, config);
  const address = await server.listen().catch((error: unknown) => {
    clearInterval(probe);
    throw error;
  });
  return {
    server,
    health,
    address,
    async close() {
      clearInterval(probe);
      await server.close();
    },
  };
}
