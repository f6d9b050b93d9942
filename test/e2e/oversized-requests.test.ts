import { execFile } from "node:child_process";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { ensureGrpcurl } from "../helpers/grpcurl.ts";
import { envelope, rawConnect, statusLine, within } from "../helpers/raw-protocol.ts";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";

const LOGIN = "/portcullis.v1.AuthService/Login";
const MIB = 1024 * 1024;
const grpcurl = await ensureGrpcurl();

/** A LoginRequest whose password is `size` bytes: `string username = 1`, `string password = 2`. */
function loginMessage(size: number): Buffer {
  const varint = (n: number) => {
    const bytes: number[] = [];
    for (; n >= 0x80; n = Math.floor(n / 0x80)) bytes.push((n % 0x80) | 0x80);
    bytes.push(n);
    return Buffer.from(bytes);
  };
  return Buffer.concat([Buffer.from([0x0a, 0x07]), Buffer.from("someone"), Buffer.from([0x12]), varint(size), Buffer.alloc(size, 0x78)]);
}

/**
 * A message over the limit is refused as soon as its length is known, while the client may still be
 * sending it. Clients that write their whole request before reading must still get the answer —
 * RESOURCE_EXHAUSTED, never a hang, a 408, a reset or INTERNAL — and an HTTP/1.1 connection stays usable.
 */
describe("a request message over the size limit is RESOURCE_EXHAUSTED however the client sends it", () => {
  let server: TestServer;
  beforeAll(async () => {
    // A short body timeout: without the fix, a blocked HTTP/1.1 client is cut with 408 after it.
    server = await startTestServer({ env: { PORTCULLIS_MAX_MESSAGE_BYTES: String(MIB), PORTCULLIS_BODY_TIMEOUT_MS: "3000" } });
  });
  afterAll(async () => {
    await server.close();
  });

  it.each([
    { name: "gRPC-Web", contentType: "application/grpc-web+proto", framed: true },
    { name: "Connect", contentType: "application/proto", framed: false },
  ])("HTTP/1.1 $name: a client that writes 24 MiB before it reads gets the answer, then reuses the connection", async ({ contentType, framed }) => {
    const message = loginMessage(24 * MIB);
    const body = framed ? envelope(0, message) : message;
    const conn = await rawConnect(server.port);
    const head = `POST ${LOGIN} HTTP/1.1\r\nHost: portcullis\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.byteLength}\r\n\r\n`;
    const written = new Promise<void>((resolve, reject) => conn.socket.write(Buffer.concat([Buffer.from(head), body]), (error) => (error ? reject(error) : resolve())));
    // The whole body goes out: the server reads (and drops) what it refused instead of leaving the client blocked.
    expect(await within(written, 10_000)).toBeUndefined();
    await expect.poll(() => conn.received().toString("latin1"), { timeout: 10_000 }).toMatch(framed ? /grpc-status: ?8/ : /resource_exhausted/);
    expect(statusLine(conn.received())).toBe(framed ? "HTTP/1.1 200 OK" : "HTTP/1.1 429 Too Many Requests");
    // Refused by the gateway's own check, as every protocol is: its words, the request id, one log line.
    expect(conn.received().toString("latin1")).toMatch(new RegExp(`request(%20| )message(%20| )of(%20| )${message.byteLength}(%20| )bytes`));
    const requestId = /x-request-id: ?([\w-]+)/i.exec(conn.received().toString("latin1"))?.[1];
    expect(requestId).toBeDefined();
    await expect.poll(() => server.logLines().filter((line) => line["requestId"] === requestId && line["msg"] === "rpc")).toHaveLength(1);
    const answered = conn.received().byteLength;
    conn.write(`GET /healthz HTTP/1.1\r\nHost: portcullis\r\n\r\n`);
    await expect.poll(() => conn.received().subarray(answered).toString("latin1"), { timeout: 10_000 }).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*"status"/);
    conn.destroy();
  });

  it("HTTP/1.1: a body past the discard limit closes the connection after the answer", async () => {
    const body = envelope(0, loginMessage(80 * MIB));
    const conn = await rawConnect(server.port);
    conn.socket.on("error", () => undefined); // the write fails when the server closes: expected
    conn.write(`POST ${LOGIN} HTTP/1.1\r\nHost: portcullis\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: ${body.byteLength}\r\n\r\n`);
    conn.write(body);
    expect(await within(conn.closed, 10_000)).not.toBe("timeout");
  });

  // Node's HTTP/2 client buffers the whole request in its session, whose default memory cap (10 MB)
  // would reset the stream on the client's own side: raised here, as a client sending large messages must.
  const nodeOptions = { maxSessionMemory: 256 };
  it.each([
    { name: "gRPC", transport: (baseUrl: string) => createGrpcTransport({ baseUrl, nodeOptions }) },
    { name: "gRPC-Web, HTTP/2", transport: (baseUrl: string) => createGrpcWebTransport({ baseUrl, httpVersion: "2", nodeOptions }) },
    { name: "Connect, HTTP/2", transport: (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions }) },
    { name: "gRPC-Web, HTTP/1.1", transport: (baseUrl: string) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }) },
    { name: "Connect, HTTP/1.1", transport: (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "1.1" }) },
  ])("connect-node over $name, 24 MiB", async ({ transport }) => {
    const client = createClient(AuthService, transport(server.baseUrl));
    for (let i = 0; i < 2; i++) {
      const error = await client.login({ username: "someone", password: "x".repeat(24 * MIB) }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.ResourceExhausted);
      expect(error?.rawMessage).toMatch(/larger than/);
    }
  });

  it.skipIf(grpcurl === undefined)("grpcurl (grpc-go), 24 MiB", async () => {
    const request = JSON.stringify({ username: "someone", password: "x".repeat(24 * MIB) });
    const answer = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        grpcurl!,
        ["-plaintext", "-max-msg-sz", String(64 * MIB), "-d", "@", `127.0.0.1:${server.port}`, "portcullis.v1.AuthService/Login"],
        { timeout: 30_000 },
        (_error, stdout, stderr) => resolve({ stdout, stderr }),
      );
      child.stdin!.end(request);
    });
    expect(answer.stderr).toMatch(/Code: ResourceExhausted/);
  });
});
