import { brotliCompressSync, gzipSync } from "node:zlib";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_empty } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, type ExpectStatic } from "vitest";
import { createPortcullisClient, createPortcullisTransport, type WireProtocol } from "../../clients/connect-node.ts";
import { envelope, rawConnect, statusLine, within } from "../helpers/raw-protocol.ts";
import { probeRpc, type ProbeProtocol } from "../helpers/raw-rpc.ts";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";

const CHECK = "/grpc.health.v1.Health/Check";
const WATCH = "/grpc.health.v1.Health/Watch";
const CREATE_API_KEY = "/portcullis.v1.ApiKeyService/CreateApiKey";
const REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

// Every way a unary request reaches the server: the three protocols, over HTTP/2 and HTTP/1.1.
const UNARY_ROUTES: Array<{ protocol: ProbeProtocol; httpVersion: "1.1" | "2" }> = [
  { protocol: "grpc", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "connect", httpVersion: "1.1" },
];

// Request bodies no protobuf parser accepts. HealthCheckRequest has `string service = 1`;
// CreateApiKeyRequest has `google.protobuf.Duration expires_in = 3`.
const BAD_PROTOBUF: Array<{ name: string; path: string; message: number[] }> = [
  { name: "invalid varint", path: CHECK, message: [0x08, ...Array<number>(10).fill(0xff), 0x01] },
  { name: "wire type 7", path: CHECK, message: [0x0f, 0x00] },
  { name: "field number 0", path: CHECK, message: [0x00, 0x01] },
  { name: "truncated message", path: CHECK, message: [0x0a, 0x05, 0x61] },
  { name: "truncated Duration", path: CREATE_API_KEY, message: [0x1a, 0x02, 0x08, 0x80] },
  { name: "invalid UTF-8 in a string", path: CHECK, message: [0x0a, 0x02, 0xc3, 0x28] },
];

// Words of the parser's that must not reach a client.
const PARSER_INTERNALS = /parse binary|premature EOF|varint|wire type|illegal tag|encoded data|decompression failed|Z_DATA_ERROR|incorrect header check/i;

function framed(protocol: ProbeProtocol, message: Uint8Array, flags = 0): Uint8Array {
  return protocol === "connect" ? message : envelope(flags, message);
}

let probes = 0;
/** A fresh, well-formed x-request-id, so the answer and the log line can be matched to the probe. */
function nextRequestId(): string {
  return `probe-${process.pid}-${++probes}`;
}
const HEAD = `POST ${CHECK} HTTP/1.1\r\nHost: portcullis\r\nContent-Type: application/json\r\n`;

describe("malformed requests are answered as the client's error", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  describe("malformed HTTP/1.1 gets 400 or 431, then the connection closes (never a reset)", () => {
    const CASES: Array<{ name: string; request: string; status: string }> = [
      { name: "an oversized header", request: `${HEAD}X-Big: ${"a".repeat(20_000)}\r\nContent-Length: 2\r\n\r\n{}`, status: "HTTP/1.1 431 Request Header Fields Too Large" },
      {
        name: "1,000 headers",
        request: `${HEAD}${Array.from({ length: 1000 }, (_, i) => `X-Header-${i}: v`).join("\r\n")}\r\nContent-Length: 2\r\n\r\n{}`,
        status: "HTTP/1.1 431 Request Header Fields Too Large",
      },
      { name: "a NUL byte in a header value", request: `${HEAD}X-Note: a\0b\r\nContent-Length: 2\r\n\r\n{}`, status: "HTTP/1.1 400 Bad Request" },
      { name: "a newline inside a header value", request: `${HEAD}X-Note: a\nb: c\r\nContent-Length: 2\r\n\r\n{}`, status: "HTTP/1.1 400 Bad Request" },
      {
        name: "both Content-Length and Transfer-Encoding",
        request: `${HEAD}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
        status: "HTTP/1.1 400 Bad Request",
      },
      { name: "bare LF line ends", request: `${HEAD}Content-Length: 2\r\n\r\n{}`.replace(/\r\n/g, "\n"), status: "HTTP/1.1 400 Bad Request" },
      // No URL can hold this authority: connect-es could not take the call (and the process must not fall over).
      { name: "a Host no URL can hold", request: `${HEAD.replace("Host: portcullis", "Host: a b")}Content-Length: 2\r\n\r\n{}`, status: "HTTP/1.1 400 Bad Request" },
      { name: "a Host with a port out of range", request: `${HEAD.replace("Host: portcullis", "Host: portcullis:99999")}Content-Length: 2\r\n\r\n{}`, status: "HTTP/1.1 400 Bad Request" },
    ];

    it.concurrent.for(CASES)("$name", async ({ request, status }, { expect }) => {
      const conn = await rawConnect(server.port);
      conn.write(request);
      const ended = await within(conn.closed, 10_000);
      conn.destroy();
      expect(ended).toBe("closed");
      expect(statusLine(conn.received())).toBe(status);
      expect(conn.received().toString("latin1")).toContain("\r\nConnection: close\r\n");
    });
  });

  /** The log lines of one call: its request id must be on exactly one "rpc" line. */
  function rpcLines(requestId: string) {
    return server.logLines().filter((line) => line.msg === "rpc" && line.requestId === requestId);
  }

  /**
   * The answer every malformed request gets: INVALID_ARGUMENT, its request id, one log line. Takes the
   * test's own `expect` (concurrent tests must use theirs).
   */
  async function expectRefused(expect: ExpectStatic, answer: Awaited<ReturnType<typeof probeRpc>>, requestId: string, code = Code.InvalidArgument) {
    expect(answer.error?.code, answer.error?.message).toBe(code);
    expect(answer.error?.rawMessage).not.toMatch(PARSER_INTERNALS);
    expect(answer.requestId).toBe(requestId);
    expect(answer.errorInfoRequestId).toBe(requestId);
    await expect.poll(() => rpcLines(requestId).map((line) => line.code)).toEqual([Code[code] === "InvalidArgument" ? "invalid_argument" : "resource_exhausted"]);
    expect(server.logText()).not.toContain("internal error");
  }

  describe("malformed protobuf is INVALID_ARGUMENT with the request id and one log line", () => {
    const cases = BAD_PROTOBUF.flatMap((bad) => UNARY_ROUTES.map((route) => ({ ...bad, ...route })));
    it.concurrent.for(cases)("$name over $protocol (HTTP/$httpVersion)", async ({ path, message, protocol, httpVersion }, { expect }) => {
      const requestId = nextRequestId();
      const answer = await probeRpc(server.baseUrl, { protocol, httpVersion, path, body: framed(protocol, Buffer.from(message)), headers: { "x-request-id": requestId } });
      await expectRefused(expect, answer, requestId);
    });

    it("in a server stream's request (gRPC and Connect)", async () => {
      for (const protocol of ["grpc", "connect-stream"] as const) {
        const requestId = nextRequestId();
        const answer = await probeRpc(server.baseUrl, { protocol, httpVersion: "2", path: WATCH, body: envelope(0, Buffer.from([0x0a, 0x05, 0x61])), headers: { "x-request-id": requestId } });
        await expectRefused(expect, answer, requestId);
      }
    });

    it("in the second message of a bidirectional stream", async () => {
      const requestId = nextRequestId();
      const listServices = Buffer.from([0x3a, 0x00]); // ServerReflectionRequest{list_services: ""}
      const body = Buffer.concat([envelope(0, listServices), envelope(0, Buffer.from([0x0f]))]);
      const answer = await probeRpc(server.baseUrl, { protocol: "grpc", httpVersion: "2", path: REFLECTION, body, headers: { "x-request-id": requestId } });
      await expectRefused(expect, answer, requestId);
    });
  });

  describe("corrupt compressed bodies are INVALID_ARGUMENT", () => {
    const garbage = Buffer.from("this is not compressed at all");
    const cases: Array<{ name: string; protocol: ProbeProtocol; httpVersion: "1.1" | "2"; path: string; body: Uint8Array; headers: Record<string, string> }> = [
      { name: "gRPC, grpc-encoding gzip", protocol: "grpc", httpVersion: "2", path: CHECK, body: envelope(1, garbage), headers: { "grpc-encoding": "gzip" } },
      { name: "gRPC, grpc-encoding br", protocol: "grpc", httpVersion: "2", path: CHECK, body: envelope(1, garbage), headers: { "grpc-encoding": "br" } },
      { name: "gRPC-Web, grpc-encoding gzip", protocol: "grpc-web", httpVersion: "1.1", path: CHECK, body: envelope(1, garbage), headers: { "grpc-encoding": "gzip" } },
      {
        name: "gRPC, truncated gzip",
        protocol: "grpc",
        httpVersion: "2",
        path: CHECK,
        body: envelope(1, gzipSync(Buffer.from([0x0a, 0x01, 0x61])).subarray(0, 12)),
        headers: { "grpc-encoding": "gzip" },
      },
      { name: "gRPC, compressed flag without an encoding", protocol: "grpc", httpVersion: "2", path: CHECK, body: envelope(1, gzipSync(Buffer.alloc(0))), headers: {} },
      { name: "Connect, content-encoding gzip", protocol: "connect", httpVersion: "1.1", path: CHECK, body: garbage, headers: { "content-encoding": "gzip" } },
      { name: "Connect, content-encoding br", protocol: "connect", httpVersion: "2", path: CHECK, body: garbage, headers: { "content-encoding": "br" } },
      { name: "Connect stream, connect-content-encoding gzip", protocol: "connect-stream", httpVersion: "2", path: WATCH, body: envelope(1, garbage), headers: { "connect-content-encoding": "gzip" } },
      { name: "gzip of a malformed message", protocol: "grpc", httpVersion: "2", path: CHECK, body: envelope(1, gzipSync(Buffer.from([0x0f, 0x00]))), headers: { "grpc-encoding": "gzip" } },
      { name: "br of a malformed message", protocol: "connect", httpVersion: "1.1", path: CHECK, body: brotliCompressSync(Buffer.from([0x0f, 0x00])), headers: { "content-encoding": "br" } },
    ];
    it.concurrent.for(cases)("$name", async ({ protocol, httpVersion, path, body, headers }, { expect }) => {
      const requestId = nextRequestId();
      const answer = await probeRpc(server.baseUrl, { protocol, httpVersion, path, body, headers: { ...headers, "x-request-id": requestId } });
      await expectRefused(expect, answer, requestId);
    });

    it("still serves well-compressed requests", async () => {
      const message = Buffer.from([0x0a, 0x00]); // service: ""
      for (const [protocol, headers] of [
        ["grpc", { "grpc-encoding": "gzip" }],
        ["grpc-web", { "grpc-encoding": "br" }],
      ] as const) {
        const answer = await probeRpc(server.baseUrl, { protocol, httpVersion: "2", path: CHECK, body: envelope(1, protocol === "grpc" ? gzipSync(message) : brotliCompressSync(message)), headers });
        expect(answer.error).toBeUndefined();
      }
      const connect = await probeRpc(server.baseUrl, { protocol: "connect", httpVersion: "1.1", path: CHECK, body: gzipSync(message), headers: { "content-encoding": "gzip" } });
      expect(connect.error).toBeUndefined();
    });
  });

  describe("envelopes with reserved flag bits are refused", () => {
    const cases = [0x80, 0x02, 0x40, 0x81].flatMap((flags) =>
      (
        [
          { protocol: "grpc", httpVersion: "2", path: CHECK },
          { protocol: "grpc-web", httpVersion: "1.1", path: CHECK },
          { protocol: "connect-stream", httpVersion: "2", path: WATCH },
        ] as const
      ).map((route) => ({ flags: `0x${flags.toString(16)}`, value: flags, ...route })),
    );
    it.concurrent.for(cases)("flags $flags over $protocol", async ({ value, protocol, httpVersion, path }, { expect }) => {
      const requestId = nextRequestId();
      const body = value & 0x01 ? envelope(value, gzipSync(Buffer.alloc(0))) : envelope(value, Buffer.alloc(0));
      const answer = await probeRpc(server.baseUrl, { protocol, httpVersion, path, body, headers: { "x-request-id": requestId, ...(value & 0x01 ? { "grpc-encoding": "gzip" } : {}) } });
      await expectRefused(expect, answer, requestId);
    });

    it("a unary message whose header claims more than the limit is RESOURCE_EXHAUSTED", async () => {
      for (const [protocol, httpVersion] of [
        ["grpc", "2"],
        ["grpc-web", "1.1"],
      ] as const) {
        const requestId = nextRequestId();
        const body = Buffer.from([0x00, 0x7f, 0xff, 0xff, 0xff, 0x0a, 0x00]);
        const answer = await probeRpc(server.baseUrl, { protocol, httpVersion, path: CHECK, body, headers: { "x-request-id": requestId } });
        await expectRefused(expect, answer, requestId, Code.ResourceExhausted);
      }
    });

    it("a message cut short by the end of the body", async () => {
      const requestId = nextRequestId();
      const answer = await probeRpc(server.baseUrl, {
        protocol: "grpc",
        httpVersion: "2",
        path: CHECK,
        body: envelope(0, Buffer.from([0x0a, 0x00])).subarray(0, 6),
        headers: { "x-request-id": requestId },
      });
      await expectRefused(expect, answer, requestId);
    });
  });

  describe("JSON requests are read strictly", () => {
    const JSON_ROUTES = [
      { protocol: "connect", httpVersion: "1.1", contentType: "application/json" },
      { protocol: "connect", httpVersion: "2", contentType: "application/json" },
      { protocol: "grpc", httpVersion: "2", contentType: "application/grpc+json" },
      { protocol: "grpc-web", httpVersion: "1.1", contentType: "application/grpc-web+json" },
    ] as const;
    const cases = [
      { name: "an unknown field", json: '{"servise": ""}', message: 'unknown field "servise" in grpc.health.v1.HealthCheckRequest' },
      { name: "a value of the wrong type", json: '{"service": 12}', message: 'invalid value for field "service" of grpc.health.v1.HealthCheckRequest' },
      { name: "broken JSON", json: '{"service": "a-secret-value', message: "request message is not valid JSON" },
    ].flatMap((c) => JSON_ROUTES.map((route) => ({ ...c, ...route })));
    it.concurrent.for(cases)("$name over $protocol (HTTP/$httpVersion)", async ({ json, message, protocol, httpVersion, contentType }, { expect }) => {
      const requestId = nextRequestId();
      const body = Buffer.from(json);
      const answer = await probeRpc(server.baseUrl, { protocol, httpVersion, path: CHECK, body: framed(protocol, body), headers: { "content-type": contentType, "x-request-id": requestId } });
      await expectRefused(expect, answer, requestId);
      expect(answer.error?.rawMessage).toBe(message);
      expect(answer.error?.rawMessage).not.toContain("a-secret-value");
    });
  });

  describe("an unknown method is UNIMPLEMENTED in every protocol", () => {
    // A real service descriptor that the gateway does not serve.
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "probe/nowhere.proto",
        package: "probe.nowhere",
        syntax: "proto3",
        dependency: ["google/protobuf/empty.proto"],
        service: [{ name: "Nowhere", method: [{ name: "Call", inputType: ".google.protobuf.Empty", outputType: ".google.protobuf.Empty" }] }],
      }),
      (name) => (name === "google/protobuf/empty.proto" ? file_google_protobuf_empty : undefined),
    );
    const Nowhere = registry.getService("probe.nowhere.Nowhere")!;
    const CLIENTS: Array<{ protocol: WireProtocol; httpVersion: "1.1" | "2" }> = [
      { protocol: "grpc", httpVersion: "2" },
      { protocol: "grpc-web", httpVersion: "2" },
      { protocol: "grpc-web", httpVersion: "1.1" },
      { protocol: "connect", httpVersion: "2" },
      { protocol: "connect", httpVersion: "1.1" },
    ];

    it.concurrent.for(CLIENTS)("connect-node over $protocol (HTTP/$httpVersion)", async ({ protocol, httpVersion }, { expect }) => {
      const client = createPortcullisClient(Nowhere, createPortcullisTransport({ baseUrl: server.baseUrl, protocol, httpVersion })) as unknown as {
        call(request: object): Promise<unknown>;
      };
      const error = await client.call({}).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.Unimplemented);
    });

    it("@grpc/grpc-js gets status 12 with a message naming the method", async () => {
      const Client = grpc.makeGenericClientConstructor(
        {
          call: {
            path: "/probe.nowhere.Nowhere/Call",
            requestStream: false,
            responseStream: false,
            requestSerialize: (value: Buffer) => value,
            requestDeserialize: (value: Buffer) => value,
            responseSerialize: (value: Buffer) => value,
            responseDeserialize: (value: Buffer) => value,
          },
        },
        "Nowhere",
      );
      const client = new Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
        call(request: Buffer, callback: (error: grpc.ServiceError | null) => void): void;
      };
      try {
        const error = await new Promise<grpc.ServiceError | null>((resolve) => client.call(Buffer.alloc(0), resolve));
        expect(error?.code).toBe(grpc.status.UNIMPLEMENTED);
        expect(error?.details).toBe("unknown method probe.nowhere.Nowhere/Call");
      } finally {
        client.close();
      }
    });

    it("a raw gRPC probe gets HTTP 200 with grpc-status 12, the request id and one log line", async () => {
      const requestId = nextRequestId();
      const answer = await probeRpc(server.baseUrl, {
        protocol: "grpc",
        httpVersion: "2",
        path: "/probe.nowhere.Nowhere/Call",
        body: envelope(0, Buffer.alloc(0)),
        headers: { "x-request-id": requestId },
      });
      expect(answer.httpStatus).toBe(200);
      expect(answer.error?.code).toBe(Code.Unimplemented);
      expect(answer.requestId).toBe(requestId);
      await expect.poll(() => rpcLines(requestId).map((line) => [line.method, line.code])).toEqual([["probe.nowhere.Nowhere/Call", "unimplemented"]]);
    });
  });
});
