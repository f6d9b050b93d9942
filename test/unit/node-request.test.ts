import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { credentialHeadersKey } from "../../src/handlers/context-keys.ts";
import { universalRequestOf, type NodeRequest, type NodeResponse } from "../../src/transport/node-request.ts";

// The universal request a real Node server builds for each call, and when its signal is aborted: only
// when the call did not end normally (a client that went away), never after a normal response.

type Seen = { uReq: UniversalServerRequest; closed: Promise<void> };
let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

/** A server (HTTP/1.1 or h2c) on port 0 that builds a universal request for every call and lets `respond` answer. */
async function serve(version: "1.1" | "2", respond: (res: NodeResponse) => void): Promise<{ port: number; calls: Seen[] }> {
  const calls: Seen[] = [];
  const handler = (req: NodeRequest, res: NodeResponse) => {
    const uReq = universalRequestOf(req, res, req, createContextValues());
    calls.push({ uReq, closed: new Promise((resolve) => res.once("close", () => resolve())) });
    respond(res);
  };
  const server = version === "2" ? http2.createServer(handler) : http.createServer(handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => sessions.add(session));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stop = async () => {
    if (server instanceof http.Server) server.closeAllConnections();
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return { port: (server.address() as AddressInfo).port, calls };
}

const answer = (res: NodeResponse) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end("{}");
};

describe("the universal request of a Node request", () => {
  it("carries the method, the absolute URL and the headers (no HTTP/2 pseudo-headers)", async () => {
    const { port, calls } = await serve("2", answer);
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const req = client.request({ ":method": "POST", ":path": "/pkg.Service/Method", "x-note": "a" });
    req.end();
    await new Promise((resolve) => req.on("close", resolve).resume());
    client.close();
    const { uReq } = calls[0]!;
    expect(uReq.method).toBe("POST");
    expect(uReq.url).toBe(`http://127.0.0.1:${port}/pkg.Service/Method`);
    expect(uReq.header.get("x-note")).toBe("a");
    expect([...uReq.header.keys()].some((name) => name.startsWith(":"))).toBe(false);
  });

  it("HTTP/1.1: a call answered normally never aborts its signal; a client that hangs up does", async () => {
    let holdNext = false;
    const { port, calls } = await serve("1.1", (res) => {
      if (!holdNext) answer(res);
    });
    const agent = new http.Agent({ keepAlive: true });
    for (let i = 0; i < 3; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .request({ port, host: "127.0.0.1", method: "POST", path: "/x", agent }, (res) => {
            let text = "";
            res.on("data", (chunk: Buffer) => (text += chunk.toString()));
            res.on("end", () => resolve(text));
          })
          .on("error", reject)
          .end("{}");
      });
      expect(body).toBe("{}");
    }
    agent.destroy(); // the kept-alive connection closes too: still no abort
    await Promise.all(calls.map((call) => call.closed));
    expect(calls.map((call) => call.uReq.signal.aborted)).toEqual([false, false, false]);

    holdNext = true;
    const hungUp = http.request({ port, host: "127.0.0.1", method: "POST", path: "/x" });
    hungUp.on("error", () => undefined);
    hungUp.end("{}");
    await expect.poll(() => calls.length).toBe(4);
    hungUp.destroy();
    await expect.poll(() => calls[3]!.uReq.signal.aborted).toBe(true);
  });

  it("HTTP/2: a call answered normally never aborts its signal; a reset aborts it with the reset's code", async () => {
    let holdNext = false;
    const { port, calls } = await serve("2", (res) => {
      if (!holdNext) answer(res);
    });
    const client = http2.connect(`http://127.0.0.1:${port}`);
    for (let i = 0; i < 3; i++) {
      const req = client.request({ ":method": "POST", ":path": "/x" });
      req.end("{}");
      await new Promise((resolve) => req.on("close", resolve).resume());
    }
    await Promise.all(calls.map((call) => call.closed));
    expect(calls.map((call) => call.uReq.signal.aborted)).toEqual([false, false, false]);

    holdNext = true;
    const cancelled = client.request({ ":method": "POST", ":path": "/x" });
    cancelled.on("error", () => undefined);
    cancelled.end("{}");
    await expect.poll(() => calls.length).toBe(4);
    cancelled.close(http2.constants.NGHTTP2_CANCEL);
    await expect.poll(() => calls[3]!.uReq.signal.aborted).toBe(true);
    const reason = calls[3]!.uReq.signal.reason as unknown;
    expect(reason).toBeInstanceOf(ConnectError);
    expect((reason as ConnectError).code).toBe(Code.Canceled);
    client.close();
  });
});

// The credential fields are carried beside the call's Headers, not in them (a ~750-character JWT was
// checked twice by Headers on every call), and must be exactly what Headers would have held: the same
// trimming, and refused (a TypeError, which the adapter answers with 400) exactly when Headers refuses.
describe("the credential fields of a Node request", () => {
  /** What fetch Headers makes of one value: the string it holds, or "refused". */
  const asHeaders = (name: string, value: string): string => {
    try {
      const header = new Headers();
      header.append(name, value);
      return header.get(name) ?? "";
    } catch {
      return "refused";
    }
  };
  /** What the transport makes of one value (a Node HTTP/2 request reduced to what the conversion reads). */
  const asTransport = (name: string, value: string): string => {
    const req = { headers: { [name]: value }, url: "/x", method: "POST", httpVersion: "2.0", authority: "127.0.0.1:1", socket: {}, stream: { rstCode: 0 }, once: () => undefined };
    const contextValues = createContextValues();
    try {
      const uReq = universalRequestOf(req as unknown as NodeRequest, {} as NodeResponse, (async function* () {})(), contextValues);
      expect(uReq.header.has(name)).toBe(false);
      const held = contextValues.get(credentialHeadersKey)!;
      return (name === "authorization" ? held.authorization : held.apiKey) ?? "(missing)";
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError);
      return "refused";
    }
  };

  it("holds every value as Headers would, and refuses exactly what Headers refuses", () => {
    const values = [
      "Bearer abc.def.ghi",
      `Bearer ${"x".repeat(800)}`,
      " Bearer abc",
      "Bearer abc\t",
      "\t Bearer abc  ",
      "Bearer a\u00e9b", // obs-text: Node's parsers let it through, Headers keeps it
      "Bearer a\u0100b", // not a byte string
      "Bearer a\u0000b",
      "Bearer a\rb",
      "Bearer a\nb",
      "Bearer abc\r\n",
      "Bearer a\u007fb",
      "",
      " ",
    ];
    for (const name of ["authorization", "x-api-key"]) {
      for (const value of values) expect([name, JSON.stringify(value), asTransport(name, value)]).toEqual([name, JSON.stringify(value), asHeaders(name, value)]);
    }
  });

  it("a real HTTP/2 and HTTP/1.1 request: credentials in the context, not in the Headers; other fields in the Headers", async () => {
    const seen: { header: Headers; contextValues: ReturnType<typeof createContextValues> }[] = [];
    for (const version of ["2", "1.1"] as const) {
      const handler = (req: NodeRequest, res: NodeResponse) => {
        const contextValues = createContextValues();
        seen.push({ header: universalRequestOf(req, res, req, contextValues).header, contextValues });
        answer(res);
      };
      const server = version === "2" ? http2.createServer(handler) : http.createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as AddressInfo).port;
      const headers = { authorization: "Bearer abc.def.ghi", "x-api-key": "sk_key", "x-note": "a" };
      if (version === "2") {
        const client = http2.connect(`http://127.0.0.1:${port}`);
        const req = client.request({ ":method": "POST", ":path": "/x", ...headers });
        req.end("{}");
        await new Promise((resolve) => req.on("close", resolve).resume());
        client.close();
      } else {
        await new Promise<void>((resolve, reject) => {
          http
            .request({ port, host: "127.0.0.1", method: "POST", path: "/x", headers }, (res) => res.on("end", resolve).resume())
            .on("error", reject)
            .end("{}");
        });
      }
      if (server instanceof http.Server) server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    for (const { header, contextValues } of seen) {
      expect(header.get("x-note")).toBe("a");
      expect(header.has("authorization")).toBe(false);
      expect(header.has("x-api-key")).toBe(false);
      expect(contextValues.get(credentialHeadersKey)).toEqual({ authorization: "Bearer abc.def.ghi", apiKey: "sk_key" });
    }
  });
});
