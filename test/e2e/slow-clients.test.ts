import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPortcullisClient, createPortcullisTransport, type WireProtocol } from "../../clients/connect-node.ts";
import { createGrpcJsClient } from "../../clients/grpc-js.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { H2, H2_FLAG, envelope, h2ClientStart, h2Frame, h2Frames, hpackBlock, rawConnect, statusLine, within, type RawConnection } from "../helpers/raw-protocol.ts";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";

// Short limits so each probe takes about a second; a cut must come well within CUT_DEADLINE_MS, which
// a server that never cuts (the bug) cannot meet. Nothing asserts how fast a cut came.
const TIMEOUTS = { PORTCULLIS_HEADERS_TIMEOUT_MS: "700", PORTCULLIS_BODY_TIMEOUT_MS: "700", PORTCULLIS_IDLE_TIMEOUT_MS: "1000" };
const CUT_DEADLINE_MS = 12_000;
// Longer than every limit above, with margin: what must survive them is watched at least this long.
const OUTLAST_MS = 2_500;

const CHECK = "/grpc.health.v1.Health/Check";
const H1_REQUEST_HEAD = `POST ${CHECK} HTTP/1.1\r\nHost: portcullis\r\nContent-Type: application/json\r\n`;
const H2_GRPC_HEADERS: ReadonlyArray<readonly [string, string]> = [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", CHECK],
  [":authority", "portcullis"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
];

// Every protocol and HTTP version a streaming client may use.
const STREAMING: Array<{ name: string; protocol: WireProtocol; httpVersion: "1.1" | "2" }> = [
  { name: "gRPC", protocol: "grpc", httpVersion: "2" },
  { name: "Connect over HTTP/1.1", protocol: "connect", httpVersion: "1.1" },
  { name: "gRPC-Web over HTTP/1.1", protocol: "grpc-web", httpVersion: "1.1" },
  { name: "Connect over HTTP/2", protocol: "connect", httpVersion: "2" },
];

describe("slow and idle clients are cut off", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: TIMEOUTS });
  });
  afterAll(async () => {
    await server.close();
  });

  /** Waits for the server to close `conn`; a connection still open at the deadline fails the test. */
  async function cut(conn: RawConnection): Promise<void> {
    const outcome = await within(conn.closed, CUT_DEADLINE_MS);
    conn.destroy();
    expect(outcome, "the server should have closed the connection").not.toBe("timeout");
  }

  it.concurrent("answers 20 slowloris HTTP/1.1 clients 408 and closes their connections", async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => rawConnect(server.port)));
    const drips = clients.map((conn) => {
      conn.write(H1_REQUEST_HEAD);
      // One more header byte every 100 ms: always active, never done.
      return setInterval(() => conn.write("X"), 100);
    });
    try {
      await Promise.all(clients.map(cut));
    } finally {
      drips.forEach(clearInterval);
    }
    for (const conn of clients) expect(statusLine(conn.received())).toBe("HTTP/1.1 408 Request Timeout");
    expect(server.logText()).toContain("cut: headers timeout");
  });

  it.concurrent("closes an HTTP/1.1 connection that never sends a byte", async () => {
    await cut(await rawConnect(server.port));
  });

  it.concurrent("answers 408 to an HTTP/1.1 body shorter than its Content-Length", async () => {
    const conn = await rawConnect(server.port);
    conn.write(`${H1_REQUEST_HEAD}Content-Length: 100\r\n\r\n{"service":`);
    await cut(conn);
    expect(statusLine(conn.received())).toBe("HTTP/1.1 408 Request Timeout");
    expect(server.logText()).toContain("cut: body timeout");
  });

  it.concurrent("closes an idle HTTP/1.1 keep-alive connection after its response", async () => {
    const conn = await rawConnect(server.port);
    conn.write(`${H1_REQUEST_HEAD}Content-Length: 2\r\n\r\n{}`);
    await cut(conn);
    expect(statusLine(conn.received())).toBe("HTTP/1.1 200 OK");
    expect(server.logText()).toContain("cut: idle timeout");
  });

  it.concurrent("closes an HTTP/2 connection whose header block stalls (HEADERS without END_HEADERS)", async () => {
    const conn = await rawConnect(server.port);
    conn.write(Buffer.concat([h2ClientStart(), h2Frame(H2.HEADERS, 0, 1, hpackBlock(H2_GRPC_HEADERS))]));
    await cut(conn);
    expect(h2Frames(conn.received()).some((frame) => frame.type === H2.GOAWAY)).toBe(true);
  });

  it.concurrent("resets an HTTP/2 stream whose DATA stalls, and closes the connection once idle", async () => {
    const conn = await rawConnect(server.port);
    const partialMessage = envelope(0, Buffer.from([0x0a, 0x10])).subarray(0, 6); // a 16-byte field, 1 byte sent
    conn.write(Buffer.concat([h2ClientStart(), h2Frame(H2.HEADERS, H2_FLAG.END_HEADERS, 1, hpackBlock(H2_GRPC_HEADERS)), h2Frame(H2.DATA, 0, 1, partialMessage)]));
    await cut(conn);
    const frames = h2Frames(conn.received());
    const reset = frames.find((frame) => frame.type === H2.RST_STREAM && frame.streamId === 1);
    expect(reset?.payload.readUInt32BE(0)).toBe(0x8); // CANCEL
    expect(frames.some((frame) => frame.type === H2.GOAWAY)).toBe(true);
  });

  it.concurrent("closes an idle HTTP/2 connection with GOAWAY after its last call", async () => {
    const conn = await rawConnect(server.port);
    conn.write(Buffer.concat([h2ClientStart(), h2Frame(H2.HEADERS, H2_FLAG.END_HEADERS, 1, hpackBlock(H2_GRPC_HEADERS)), h2Frame(H2.DATA, H2_FLAG.END_STREAM, 1, envelope(0, Buffer.alloc(0)))]));
    await cut(conn);
    const frames = h2Frames(conn.received());
    expect(frames.some((frame) => frame.type === H2.DATA && frame.streamId === 1)).toBe(true); // it was answered
    expect(frames.some((frame) => frame.type === H2.GOAWAY)).toBe(true);
  });

  it.concurrent("lets real clients call again after their idle connections were closed", async () => {
    const clients = STREAMING.map(({ protocol, httpVersion }) => createPortcullisClient(Health, createPortcullisTransport({ baseUrl: server.baseUrl, protocol, httpVersion })));
    const grpcJs = createGrpcJsClient(Health, `127.0.0.1:${server.port}`);
    try {
      const checkAll = () => Promise.all([...clients.map((c) => c.check({})), grpcJs.check({})]);
      for (const answer of await checkAll()) expect(answer.status).toBe(Status.SERVING);
      await new Promise((resolve) => setTimeout(resolve, OUTLAST_MS)); // every connection is closed as idle
      for (const answer of await checkAll()) expect(answer.status).toBe(Status.SERVING);
    } finally {
      grpcJs.close();
    }
  });

  describe("never cuts a live call", () => {
    // Not concurrent: it flips the health status that the other tests' calls read.
    it("keeps quiet server streams open past every limit (gRPC, gRPC-Web, Connect; HTTP/1.1 and HTTP/2)", async () => {
      const watchers = STREAMING.map(({ protocol, httpVersion }) => {
        const health = createPortcullisClient(Health, createPortcullisTransport({ baseUrl: server.baseUrl, protocol, httpVersion }));
        const abort = new AbortController();
        const seen: Status[] = [];
        const done = (async () => {
          for await (const update of health.watch({ service: "" }, { signal: abort.signal })) seen.push(update.status);
        })().then(
          () => "ended",
          (error: unknown) => ConnectError.from(error).code,
        );
        return { seen, done, abort };
      });
      try {
        await expect.poll(() => watchers.every((w) => w.seen.length === 1), { timeout: 10_000 }).toBe(true);
        // The streams now send nothing while the status stays the same: longer than any limit.
        await new Promise((resolve) => setTimeout(resolve, OUTLAST_MS));
        server.health.setDatabaseReachable(false);
        await expect.poll(() => watchers.map((w) => w.seen.at(-1)), { timeout: 10_000 }).toEqual(STREAMING.map(() => Status.NOT_SERVING));
      } finally {
        server.health.setDatabaseReachable(true);
        for (const w of watchers) w.abort.abort();
      }
      for (const w of watchers) expect([Code.Canceled, "ended"]).toContain(await w.done);
    });
  });
});

describe("slow clients over TLS (HTTP/1.1 and HTTP/2 by ALPN)", () => {
  let server: TestServer;
  let dir: string;
  let ca: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-slow-tls-"));
    const pems = await generate([{ name: "commonName", value: "localhost" }], {
      keySize: 2048,
      algorithm: "sha256",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }] }],
    });
    ca = pems.cert;
    await writeFile(join(dir, "cert.pem"), pems.cert);
    await writeFile(join(dir, "key.pem"), pems.private, { mode: 0o600 });
    server = await startTestServer({ env: { ...TIMEOUTS, PORTCULLIS_TLS_CERT: join(dir, "cert.pem"), PORTCULLIS_TLS_KEY: join(dir, "key.pem") } });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.concurrent("answers a slowloris HTTP/1.1 client 408 and closes the connection", async () => {
    const conn = await rawConnect(server.port, { ca, alpn: "http/1.1" });
    conn.write(H1_REQUEST_HEAD);
    const drip = setInterval(() => conn.write("X"), 100);
    try {
      expect(await within(conn.closed, CUT_DEADLINE_MS)).not.toBe("timeout");
    } finally {
      clearInterval(drip);
      conn.destroy();
    }
    expect(statusLine(conn.received())).toBe("HTTP/1.1 408 Request Timeout");
  });

  it.concurrent("answers 408 to an HTTP/1.1 body shorter than its Content-Length", async () => {
    const conn = await rawConnect(server.port, { ca, alpn: "http/1.1" });
    conn.write(`${H1_REQUEST_HEAD}Content-Length: 100\r\n\r\n{`);
    expect(await within(conn.closed, CUT_DEADLINE_MS)).not.toBe("timeout");
    conn.destroy();
    expect(statusLine(conn.received())).toBe("HTTP/1.1 408 Request Timeout");
  });

  it.concurrent("closes an HTTP/2 connection whose header block stalls", async () => {
    const conn = await rawConnect(server.port, { ca, alpn: "h2" });
    conn.write(Buffer.concat([h2ClientStart(), h2Frame(H2.HEADERS, 0, 1, hpackBlock(H2_GRPC_HEADERS))]));
    expect(await within(conn.closed, CUT_DEADLINE_MS)).not.toBe("timeout");
    conn.destroy();
  });

  it.concurrent("closes a connection that never starts its TLS handshake", async () => {
    const conn = await rawConnect(server.port);
    expect(await within(conn.closed, CUT_DEADLINE_MS)).not.toBe("timeout");
    conn.destroy();
  });
});
