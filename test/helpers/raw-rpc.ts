import * as http from "node:http";
import * as http2 from "node:http2";
import { ConnectError } from "@connectrpc/connect";
import { endStreamFromJson, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { ErrorInfoSchema } from "../../gen/portcullis/v1/errors_pb.js";

/**
 * RPCs with hand-made request bodies (what a real client never sends: broken protobuf, corrupt
 * compression, reserved frame flags), their answers read with connect-es's own client-side decoders.
 */

export type ProbeProtocol = "grpc" | "grpc-web" | "connect" | "connect-stream";

const CONTENT_TYPES: Readonly<Record<ProbeProtocol, string>> = {
  grpc: "application/grpc",
  "grpc-web": "application/grpc-web+proto",
  connect: "application/proto",
  "connect-stream": "application/connect+proto",
};

export interface ProbeRequest {
  readonly protocol: ProbeProtocol;
  readonly httpVersion: "1.1" | "2";
  /** For example `/grpc.health.v1.Health/Check`. */
  readonly path: string;
  /** The exact request body (framed by the caller for enveloped protocols). */
  readonly body: Uint8Array;
  /** Extra request headers; `content-type` overrides the protocol's default. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ProbeAnswer {
  readonly httpStatus: number;
  /** The call's error as a client would see it; undefined if it succeeded. */
  readonly error: ConnectError | undefined;
  /** The `x-request-id` the server answered with (header or trailer). */
  readonly requestId: string | undefined;
  /** The request id carried by the error's ErrorInfo detail. */
  readonly errorInfoRequestId: string | undefined;
}

export async function probeRpc(baseUrl: string, request: ProbeRequest): Promise<ProbeAnswer> {
  const headers = { "content-type": CONTENT_TYPES[request.protocol], ...(request.protocol === "grpc" ? { te: "trailers" } : {}), ...request.headers };
  const raw = request.httpVersion === "2" ? await exchangeHttp2(baseUrl, request.path, headers, request.body) : await exchangeHttp1(baseUrl, request.path, headers, request.body);
  const error = errorOf(request.protocol, raw);
  const requestId = raw.trailers.get("x-request-id") ?? raw.headers.get("x-request-id") ?? error?.metadata.get("x-request-id") ?? undefined;
  return { httpStatus: raw.status, error, requestId, errorInfoRequestId: error?.findDetails(ErrorInfoSchema)[0]?.requestId };
}

interface RawAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  readonly trailers: Headers;
}

function errorOf(protocol: ProbeProtocol, raw: RawAnswer): ConnectError | undefined {
  switch (protocol) {
    case "grpc":
      return findTrailerError(raw.trailers.has("grpc-status") ? raw.trailers : raw.headers);
    case "grpc-web": {
      for (const { flags, data } of envelopes(raw.body)) if (flags & 0x80) return findTrailerError(trailerParse(data));
      return findTrailerError(raw.headers);
    }
    case "connect":
      return raw.status === 200 ? undefined : errorFromJsonBytes(raw.body, raw.headers, new ConnectError(`HTTP ${raw.status}`));
    case "connect-stream": {
      if (raw.status !== 200) return errorFromJsonBytes(raw.body, raw.headers, new ConnectError(`HTTP ${raw.status}`));
      for (const { flags, data } of envelopes(raw.body)) if (flags & 0x02) return endStreamFromJson(data).error;
      return new ConnectError("no end-of-stream message");
    }
  }
}

function* envelopes(body: Buffer): Generator<{ flags: number; data: Buffer }> {
  let offset = 0;
  while (body.length - offset >= 5) {
    const length = body.readUInt32BE(offset + 1);
    yield { flags: body[offset]!, data: body.subarray(offset + 5, offset + 5 + length) };
    offset += 5 + length;
  }
}

function toHeaders(incoming: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [String(value)]) headers.append(name, v);
  }
  return headers;
}

function exchangeHttp2(baseUrl: string, path: string, headers: Record<string, string>, body: Uint8Array): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    let status = 0;
    let responseHeaders = new Headers();
    let trailers = new Headers();
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = toHeaders(h);
    });
    stream.on("trailers", (t) => (trailers = toHeaders(t)));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks), trailers });
    });
    stream.end(body);
  });
}

function exchangeHttp1(baseUrl: string, path: string, headers: Record<string, string>, body: Uint8Array): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}${path}`, { method: "POST", headers: { ...headers, "content-length": String(body.byteLength) }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: toHeaders(res.headers), body: Buffer.concat(chunks), trailers: new Headers() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}
