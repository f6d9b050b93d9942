import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { answerForHttp1Error } from "./http1-errors.ts";
import { createSlowClientGuard, type ClientTimeouts, type SlowClientReason } from "./slow-client-guard.ts";

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** One TCP port for HTTP/2 (gRPC, gRPC-Web, Connect) and HTTP/1.1 (gRPC-Web, Connect). */
export interface Listener {
  listen(port: number, host: string): Promise<{ host: string; port: number }>;
  /** Stops accepting connections and asks HTTP/2 clients (GOAWAY) and idle HTTP/1.1 ones to go away. */
  stopAccepting(): Promise<void>;
  /** Cuts every remaining connection. */
  destroyAll(): void;
  /** The client's IP address for a request received by this listener. */
  remoteAddressOf(req: http.IncomingMessage | http2.Http2ServerRequest): string;
}

export interface ListenerOptions {
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Limits on slow and idle clients (see slow-client-guard.ts). */
  readonly timeouts: ClientTimeouts;
  /** Client misbehaviour worth a debug line: protocol errors, connections cut for slowness. */
  readonly onError: (message: string) => void;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

/**
 * Without TLS, HTTP/2 arrives with prior knowledge (h2c) and HTTP/1.1 as plain text; Node's http2 server
 * speaks only the former, so each new connection is routed by its first bytes. With TLS, ALPN chooses.
 */
export function createListener(handler: RequestHandler, options: ListenerOptions): Listener {
  const { tls, timeouts, onError } = options;
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const guard = createSlowClientGuard(timeouts, (reason: SlowClientReason, address: string) => onError(`connection from ${address} cut: ${reason} timeout`));
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  // HTTP/1.1 requests pass the guard first: it times their bodies, and drops requests that were parsed
  // on a connection it has already cut.
  const http1Handler: RequestHandler = (req, res) => {
    if (req.httpVersionMajor === 2) return handler(req, res); // its stream is watched through its session
    if (!guard.http1Request(req as http.IncomingMessage, res as http.ServerResponse)) {
      req.socket.destroy();
      return;
    }
    handler(req, res);
  };

  let h1: http.Server | undefined;
  let h2: http2.Http2Server | http2.Http2SecureServer;
  let front: net.Server;
  if (tls) {
    const secure = http2.createSecureServer(
      {
        cert: readFileSync(tls.certFile),
        key: readFileSync(tls.keyFile),
        allowHTTP1: true,
        ALPNProtocols: ["h2", "http/1.1"],
        handshakeTimeout: timeouts.headersMs,
      },
      http1Handler,
    );
    // With allowHTTP1 this server carries Node's own HTTP/1.1 limits (it listens, so they run): the
    // guard's take their place, so both protocols and both transports behave alike (Node's request
    // timeout would also cut a long upload that is still making progress).
    Object.assign(secure, http1Limits(timeouts));
    secure.on("secureConnection", (socket: net.Socket & { alpnProtocol?: string | false }) => {
      track(socket);
      if (socket.alpnProtocol !== "h2") guard.watchHttp1(socket, performance.now());
    });
    h2 = secure;
    front = secure;
  } else {
    h2 = http2.createServer({}, handler);
    h1 = http.createServer(http1Limits(timeouts), http1Handler);
    const h1Server = h1;
    const h2Server = h2;
    // RPCs are small writes answered at once: Nagle's algorithm would hold them for a delayed ACK (~40 ms).
    front = net.createServer({ noDelay: true }, (socket) => {
      const acceptedAt = performance.now();
      track(socket);
      routeByPreface(socket, timeouts.headersMs, (isHttp2) => {
        if (!isHttp2) {
          guard.watchHttp1(socket, acceptedAt);
          h1Server.emit("connection", socket);
          socket.resume();
          return;
        }
        // The session reads the native handle itself and, on the next tick, is fed the bytes the router
        // unshifted. The socket stays paused: resuming it would hand those bytes to nobody.
        h2Server.emit("connection", socket);
      });
    });
  }
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    guard.watchHttp2(session);
  });
  // Garbage from a client must never take the process down.
  h2.on("sessionError", (error: Error) => onError(`http2 session error: ${error.message}`));
  for (const server of [h2, h1]) {
    // Replaces Node's default answer, which resets the connection when the client is still sending:
    // a malformed request gets its 400 (431 for oversized headers), then the connection closes.
    server?.on("clientError", (error: Error & { code?: string }, socket: net.Socket) => {
      // Already answered or cut: it closes when its linger ends; later parse errors add nothing.
      if (guard.wasCut(socket)) return;
      onError(`client error: ${error.message}`);
      const answer = answerForHttp1Error(error);
      if (answer === undefined) socket.destroy();
      else guard.refuseHttp1(socket, answer);
    });
  }

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => {
          front.off("error", reject);
          const address = front.address() as AddressInfo;
          resolve({ host: address.address, port: address.port });
        });
      });
    },
    stopAccepting() {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      for (const session of sessions) session.close();
      h1?.closeIdleConnections();
      return closed;
    },
    destroyAll() {
      guard.stop();
      for (const socket of sockets) socket.destroy();
    },
    remoteAddressOf(req) {
      return req.socket.remoteAddress ?? "";
    },
  };
}

/**
 * Node's own HTTP/1.1 limits: off, the guard enforces them. Only the keep-alive timeout stays, equal to
 * the guard's idle limit, so responses advertise it (`Keep-Alive: timeout=…`) and clients stop reusing
 * a connection before the server closes it.
 */
function http1Limits(timeouts: ClientTimeouts): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number } {
  return { headersTimeout: 0, requestTimeout: 0, keepAliveTimeout: timeouts.idleMs };
}

/** Reads a new connection's first bytes; a client that sends none within `timeoutMs` is cut. */
function routeByPreface(socket: net.Socket, timeoutMs: number, route: (isHttp2: boolean) => void): void {
  let buffered = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const enough = Math.min(buffered.length, HTTP2_PREFACE.length);
    const isHttp2 = buffered.subarray(0, enough).equals(HTTP2_PREFACE.subarray(0, enough));
    if (isHttp2 && buffered.length < HTTP2_PREFACE.length) return; // a partial preface: wait for more
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onEarlyError);
    socket.pause();
    socket.unshift(buffered);
    route(isHttp2);
  };
  const onEarlyError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on("data", onData);
  socket.once("error", onEarlyError);
  socket.once("close", () => clearTimeout(timer));
}
