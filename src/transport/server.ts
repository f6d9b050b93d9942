import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { createRateLimiter } from "../access/rate-limiter.ts";
import type { Config } from "../config/config.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { rejectAllCredentials, rejectAllMfaCodes, type Authenticator, type FreshMfaVerifier } from "../domain/auth/authenticator.ts";
import { clientKey, credentialHeaderCountKey, requestIdKey } from "../handlers/context-keys.ts";
import { registerRoutes, type ServiceHandlers } from "../handlers/routes.ts";
import type { HealthStatus } from "../health/health-status.ts";
import { createInterceptorChain } from "../interceptors/chain.ts";
import { statusName } from "../interceptors/logging.ts";
import { requestIdFor } from "../interceptors/request-id.ts";
import { createRpcLog, type Logger } from "../log/logger.ts";
import type { DescriptorIndex } from "../reflection/descriptor-index.ts";
import { corsHeaders } from "./cors.ts";
import { credentialHeaderCount } from "./credential-headers.ts";
import { createListener, type RequestHandler } from "./listener.ts";
import { createRpcAdapter } from "./rpc-adapter.ts";

export interface ServerDeps {
  readonly logger: Logger;
  readonly health: HealthStatus;
  /** Served by reflection; undefined (or config.reflection false) disables reflection. */
  readonly descriptorIndex: DescriptorIndex | undefined;
  readonly authenticator?: Authenticator;
  readonly freshMfa?: FreshMfaVerifier;
  /** The API implementations; services and methods left out answer UNIMPLEMENTED. */
  readonly services?: ServiceHandlers;
  /** The JSON Web Key Set served at /.well-known/jwks.json (also by AuthService.GetJwks). */
  readonly jwks?: () => object;
  /** Records refused calls (access.denied); without it they are only logged. */
  readonly audit?: AuditRecorder;
}

export interface PortcullisServer {
  /** Starts listening on config.host:config.port; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /**
   * Graceful stop: refuse new connections, let in-flight calls and streams finish for up to
   * config.shutdownTimeoutMs, then cancel what is left with UNAVAILABLE and close every connection.
   */
  close(): Promise<void>;
  /** Calls and streams currently running. */
  readonly inFlight: number;
}

/**
 * Builds the gateway's HTTP/2 server — gRPC, gRPC-Web and Connect on one port, HTTP/1.1 too for
 * gRPC-Web and Connect, TLS when configured — without listening. Tests build servers with it on port 0.
 */
export function createServer(deps: ServerDeps, config: Config): PortcullisServer {
  const shutdown = new AbortController();
  const rpcLog = createRpcLog(deps.logger);
  const interceptors = createInterceptorChain({
    logger: deps.logger,
    authenticator: deps.authenticator ?? rejectAllCredentials,
    freshMfa: deps.freshMfa ?? rejectAllMfaCodes,
    rateLimiter: createRateLimiter(config.rateLimits),
    failedAuthentications: createRateLimiter({ failed_authentication: config.failedAuthenticationsPerMinute }),
    ...(deps.audit ? { audit: deps.audit } : {}),
  });
  const rpcHandler = createRpcAdapter({
    routes: (router) =>
      registerRoutes(router, {
        health: deps.health,
        descriptorIndex: config.reflection ? deps.descriptorIndex : undefined,
        services: deps.services ?? {},
      }),
    interceptors,
    readMaxBytes: config.maxMessageBytes,
    shutdownSignal: shutdown.signal,
    contextValues: (req) => {
      const values = createContextValues();
      const userAgent = req.headers["user-agent"];
      const offeredId = req.headers["x-request-id"];
      values.set(requestIdKey, requestIdFor(typeof offeredId === "string" ? offeredId : undefined));
      values.set(clientKey, { ip: listener.remoteAddressOf(req), userAgent: typeof userAgent === "string" ? userAgent.slice(0, 256) : "" });
      values.set(credentialHeaderCountKey, credentialHeaderCount(req.rawHeaders));
      return values;
    },
    // The same line the logging interceptor writes, for calls the transport answered before it ran.
    onRefused: (call) =>
      rpcLog({
        requestId: call.requestId,
        method: call.method,
        code: statusName(call.code),
        durationMs: Math.round(call.durationMs * 100) / 100,
        principal: undefined,
        ip: call.contextValues.get(clientKey).ip || undefined,
      }),
    onFailure: (error, method) => deps.logger.error({ err: error, method }, "rpc handler failed"),
  });

  let inFlight = 0;
  let drained: (() => void) | undefined;

  const handle: RequestHandler = (req, res) => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
    const cors = corsHeaders(config.corsOrigins, req.headers);
    for (const [name, value] of Object.entries(cors)) res.setHeader(name, value);
    if (req.method === "OPTIONS" && Object.keys(cors).length > 0) {
      res.statusCode = 204;
      res.end();
      return;
    }
    const path = (req.url ?? "").split("?")[0];
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      const status = deps.health.get("");
      res.statusCode = status === "serving" ? 200 : 503;
      res.setHeader("content-type", "application/json");
      res.setHeader("cache-control", "no-store");
      if (req.method === "HEAD") res.end();
      else res.end(`${JSON.stringify({ status })}\n`);
      return;
    }
    if (path === "/.well-known/jwks.json" && deps.jwks && (req.method === "GET" || req.method === "HEAD")) {
      res.statusCode = 200;
      res.setHeader("content-type", "application/jwk-set+json");
      res.setHeader("cache-control", "public, max-age=60");
      if (req.method === "HEAD") res.end();
      else res.end(JSON.stringify(deps.jwks()));
      return;
    }
    rpcHandler(req, res);
  };

  const listener = createListener(handle, { tls: config.tls, timeouts: config.clientTimeouts, onError: (message) => deps.logger.debug(message) });

  let closing: Promise<void> | undefined;
  return {
    get inFlight() {
      return inFlight;
    },
    listen() {
      return listener.listen(config.port, config.host);
    },
    close() {
      closing ??= (async () => {
        deps.health.markShuttingDown();
        // HTTP/2 clients get GOAWAY: they open no new streams here, while streams already open run on.
        const stopped = listener.stopAccepting();
        if (inFlight > 0) {
          const allDone = new Promise<void>((resolve) => (drained = resolve));
          const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
          await Promise.race([allDone, deadline]);
        }
        if (inFlight > 0) {
          deps.logger.warn({ inFlight }, "shutdown deadline reached; cancelling remaining calls");
          shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
          await new Promise((resolve) => setTimeout(resolve, 250).unref());
        }
        listener.destroyAll();
        await stopped;
      })();
      return closing;
    },
  };
}
