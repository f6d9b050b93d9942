import type * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";

/** How long a client may keep the server waiting; see the README's configuration table. */
export interface ClientTimeouts {
  /** A request's headers must have arrived this long after the connection (or the request) began. */
  readonly headersMs: number;
  /** A request body may go this long without a byte while the server is waiting for one. */
  readonly bodyMs: number;
  /** A connection with no call in flight is closed after this long. */
  readonly idleMs: number;
}

export type SlowClientReason = "headers" | "body" | "idle";

/**
 * Cuts off clients that hold connections without finishing their requests (slowloris, a body shorter
 * than its Content-Length, a stalled HTTP/2 header block or DATA) and connections left idle.
 *
 * Node's own header and request timeouts only run on an HTTP server that listens itself; ours receives
 * its connections from the front listener, and they would not cover HTTP/2 anyway. So one sweep, a few
 * times per shortest timeout, checks every connection against the same three limits:
 *
 * - headers: a fresh connection must deliver its first request's headers within `headersMs`; on a
 *   kept-alive HTTP/1.1 connection the clock starts with the next request's first byte. HTTP/2 allows no
 *   other frame inside a header block, so a stalled block leaves its connection silent: a session with
 *   no stream open is closed after `headersMs` when it never had one, after `idleMs` otherwise.
 * - body: while the server waits for request bytes (nothing unread is buffered on our side) and none
 *   arrive for `bodyMs`, the call is cut. Once a request is complete its response is never timed here:
 *   server streams (audio, job events, the audit tail) may stay open and quiet for as long as they run.
 * - idle: a connection with no call in flight is closed after `idleMs` (GOAWAY on HTTP/2).
 *
 * HTTP/1.1 progress is read from the socket's byte counter, which also counts what the native parser
 * consumes; HTTP/2 streams use Node's per-stream inactivity timer, which any DATA frame resets.
 */
export interface SlowClientGuard {
  /** Starts watching an HTTP/1.1 connection accepted at `acceptedAt` (performance.now()). */
  watchHttp1(socket: net.Socket, acceptedAt: number): void;
  /** Called when an HTTP/1.1 request's headers have arrived; false if its connection was already cut. */
  http1Request(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  /** Starts watching an HTTP/2 session and its streams. */
  watchHttp2(session: http2.ServerHttp2Session): void;
  /** Whether an HTTP/1.1 connection was cut by the guard (its later parse errors are expected). */
  wasCut(socket: net.Socket): boolean;
  /** Answers a malformed HTTP/1.1 request with `response` when nothing has been sent yet, then closes. */
  refuseHttp1(socket: net.Socket, response: string): void;
  /** Stops the sweep (the connections themselves are closed by the listener). */
  stop(): void;
}

const REQUEST_TIMEOUT = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
// After answering, the connection stays open this long so the answer is read before the close, rather
// than lost to a reset caused by request bytes still arriving.
const LINGER_MS = 1_000;

interface Http1Connection {
  readonly socket: net.Socket;
  /** Requests whose response has not closed yet (more than one only with pipelining). */
  readonly calls: Set<{ req: http.IncomingMessage; res: http.ServerResponse }>;
  /** Whether a request was received: before that, the connection owes its first request's headers. */
  served: boolean;
  /** When the connection last had no call in flight, and its byte count then. */
  quietSince: number;
  bytesAtQuiet: number;
  /** When bytes of the next request were first seen on a kept-alive connection. */
  headersSince: number | undefined;
  /** The byte count at the last sweep that saw the body progress, and when. */
  bytesSeen: number;
  progressAt: number;
  cut: boolean;
}

interface Http2Connection {
  readonly session: http2.ServerHttp2Session;
  openStreams: number;
  served: boolean;
  quietSince: number;
  closing: boolean;
}

export function createSlowClientGuard(timeouts: ClientTimeouts, onCut: (reason: SlowClientReason, remoteAddress: string) => void): SlowClientGuard {
  const http1 = new Map<net.Socket, Http1Connection>();
  const http2Sessions = new Set<Http2Connection>();
  const sweepEveryMs = Math.min(1_000, Math.max(25, Math.floor(Math.min(timeouts.headersMs, timeouts.bodyMs, timeouts.idleMs) / 4)));

  const close = (conn: Http1Connection, response: string | undefined) => {
    if (conn.cut) return;
    conn.cut = true;
    const { socket } = conn;
    const answerable = [...conn.calls].every((call) => !call.res.headersSent);
    if (response !== undefined && answerable && socket.writable) {
      socket.end(response);
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    } else {
      socket.destroy();
    }
  };

  const checkHttp1 = (conn: Http1Connection, now: number) => {
    if (conn.cut) return;
    const bytes = conn.socket.bytesRead;
    if (conn.calls.size === 0) {
      if (conn.served && conn.headersSince === undefined && bytes !== conn.bytesAtQuiet) conn.headersSince = now;
      const headersSince = conn.served ? conn.headersSince : conn.quietSince;
      if (headersSince !== undefined) {
        if (now - headersSince >= timeouts.headersMs) {
          onCut("headers", conn.socket.remoteAddress ?? "");
          close(conn, REQUEST_TIMEOUT);
        }
      } else if (now - conn.quietSince >= timeouts.idleMs) {
        onCut("idle", conn.socket.remoteAddress ?? "");
        close(conn, undefined);
      }
      return;
    }
    // A call is in flight: only a request body the server is waiting for is timed. Unread bytes on our
    // side mean the handler is the slow one, not the client.
    const waitingForClient = [...conn.calls].some(({ req }) => !req.complete && req.readableLength === 0);
    if (!waitingForClient || bytes !== conn.bytesSeen) {
      conn.bytesSeen = bytes;
      conn.progressAt = now;
      return;
    }
    if (now - conn.progressAt >= timeouts.bodyMs) {
      onCut("body", conn.socket.remoteAddress ?? "");
      close(conn, REQUEST_TIMEOUT);
    }
  };

  const checkHttp2 = (conn: Http2Connection, now: number) => {
    if (conn.closing || conn.openStreams > 0) return;
    const limit = conn.served ? timeouts.idleMs : timeouts.headersMs;
    if (now - conn.quietSince < limit) return;
    conn.closing = true;
    const { session } = conn;
    onCut(conn.served ? "idle" : "headers", session.socket?.remoteAddress ?? "");
    // GOAWAY first, so a client that was about to send learns not to; then the connection goes.
    session.close();
    setTimeout(() => session.destroy(), LINGER_MS).unref();
  };

  const watchStream = (conn: Http2Connection, stream: http2.ServerHttp2Stream) => {
    conn.openStreams++;
    conn.served = true;
    stream.once("close", () => {
      conn.openStreams--;
      if (conn.openStreams === 0) conn.quietSince = performance.now();
    });
    if (stream.state.remoteClose) return; // the whole request is here: nothing left to wait for
    stream.setTimeout(timeouts.bodyMs);
    stream.on("timeout", () => {
      if (stream.destroyed || stream.state.remoteClose) {
        stream.setTimeout(0); // the request is complete; its response runs as long as it needs
      } else if (stream.readableLength > 0) {
        stream.setTimeout(timeouts.bodyMs); // our reader is behind, not the client
      } else {
        onCut("body", conn.session.socket?.remoteAddress ?? "");
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
  };

  const timer = setInterval(() => {
    const now = performance.now();
    for (const conn of http1.values()) checkHttp1(conn, now);
    for (const conn of http2Sessions) checkHttp2(conn, now);
  }, sweepEveryMs);
  timer.unref();

  return {
    watchHttp1(socket, acceptedAt) {
      const conn: Http1Connection = {
        socket,
        calls: new Set(),
        served: false,
        quietSince: acceptedAt,
        bytesAtQuiet: socket.bytesRead,
        headersSince: undefined,
        bytesSeen: socket.bytesRead,
        progressAt: acceptedAt,
        cut: false,
      };
      http1.set(socket, conn);
      socket.once("close", () => http1.delete(socket));
    },
    http1Request(req, res) {
      const conn = http1.get(req.socket);
      if (conn === undefined) return true;
      if (conn.cut) return false;
      const call = { req, res };
      conn.calls.add(call);
      conn.served = true;
      conn.headersSince = undefined;
      conn.bytesSeen = conn.socket.bytesRead;
      conn.progressAt = performance.now();
      res.once("close", () => {
        conn.calls.delete(call);
        if (conn.calls.size > 0) return;
        conn.quietSince = performance.now();
        conn.bytesAtQuiet = conn.socket.bytesRead;
      });
      return true;
    },
    watchHttp2(session) {
      const conn: Http2Connection = { session, openStreams: 0, served: false, quietSince: performance.now(), closing: false };
      http2Sessions.add(conn);
      session.on("stream", (stream: http2.ServerHttp2Stream) => watchStream(conn, stream));
      session.once("close", () => http2Sessions.delete(conn));
    },
    wasCut(socket) {
      return http1.get(socket)?.cut ?? false;
    },
    refuseHttp1(socket, response) {
      const conn = http1.get(socket);
      if (conn !== undefined) {
        close(conn, response);
        return;
      }
      if (socket.writable) {
        socket.end(response);
        setTimeout(() => socket.destroy(), LINGER_MS).unref();
      } else {
        socket.destroy();
      }
    },
    stop() {
      clearInterval(timer);
    },
  };
}
