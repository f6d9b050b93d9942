import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawConnect, statusLine, within } from "./helpers/raw-protocol.ts";
import { startTestServer, type TestServer } from "./helpers/test-server.ts";

const CHECK = "/grpc.health.v1.Health/Check";
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
    ];

    it.concurrent.each(CASES)("$name", async ({ request, status }) => {
      const conn = await rawConnect(server.port);
      conn.write(request);
      const ended = await within(conn.closed, 10_000);
      conn.destroy();
      expect(ended).toBe("closed");
      expect(statusLine(conn.received())).toBe(status);
      expect(conn.received().toString("latin1")).toContain("\r\nConnection: close\r\n");
    });
  });
});
