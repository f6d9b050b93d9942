import { Code } from "@connectrpc/connect";
import * as connectProtocol from "@connectrpc/connect/protocol-connect";
import * as grpcProtocol from "@connectrpc/connect/protocol-grpc";
import * as grpcWebProtocol from "@connectrpc/connect/protocol-grpc-web";
import type { NodeServerRequest, NodeServerResponse } from "./rpc-adapter.ts";

// Only a path of gRPC's own shape is repeated back; anything else could inject into a client's output.
const METHOD_PATH = /^\/[A-Za-z_][A-Za-z0-9_.]{0,200}\/[A-Za-z_][A-Za-z0-9_]{0,100}$/;

/** "package.Service/Method" for a request path of gRPC's shape, else undefined. */
export function methodNameOf(path: string): string | undefined {
  return METHOD_PATH.test(path) ? path.slice(1) : undefined;
}

/**
 * Answers a request for a path that no service serves, in the protocol the client speaks: gRPC and
 * gRPC-Web clients get a normal response with grpc-status 12 (UNIMPLEMENTED), as gRPC servers answer;
 * Connect clients get HTTP 404 with a Connect error body (code "unimplemented"); anything else a bare 404.
 * Returns the protocol it answered in, or undefined for the bare 404.
 */
export function answerUnknownMethod(req: NodeServerRequest, res: NodeServerResponse, requestId: string): "grpc" | "grpc-web" | "connect" | undefined {
  const path = (req.url ?? "").split("?")[0] ?? "";
  const name = methodNameOf(path);
  const message = name !== undefined ? `unknown method ${name}` : "unknown method";
  const contentType = req.headers["content-type"] ?? "";
  res.setHeader("x-request-id", requestId);
  const grpc = grpcProtocol.parseContentType(contentType);
  const grpcWeb = grpc === undefined ? grpcWebProtocol.parseContentType(contentType) : undefined;
  if (grpc !== undefined || (grpcWeb !== undefined && !grpcWeb.text)) {
    // A trailers-only response: the status travels in the headers, with no message.
    const headers = {
      "content-type": contentType,
      [grpcProtocol.headerGrpcStatus]: String(Code.Unimplemented),
      [grpcProtocol.headerGrpcMessage]: grpcPercentEncode(message),
    };
    if ("stream" in res) {
      // On HTTP/2 it must be one HEADERS frame that ends the stream: the compatibility API would send
      // an empty DATA frame after it, and gRPC clients then miss the trailers they expect (INTERNAL).
      res.stream.respond({ ...res.getHeaders(), ...headers, ":status": 200 }, { endStream: true });
    } else {
      res.writeHead(200, headers);
      res.end();
    }
    return grpc !== undefined ? "grpc" : "grpc-web";
  }
  if (req.method === "POST" && connectProtocol.parseContentType(contentType) !== undefined) {
    const body = JSON.stringify({ code: connectProtocol.codeToString(Code.Unimplemented), message });
    res.writeHead(404, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return "connect";
  }
  res.writeHead(404);
  res.end();
  return undefined;
}

/**
 * grpc-message's percent-encoding: only bytes outside printable ASCII, and "%", are escaped (gRPC's
 * PROTOCOL-HTTP2.md). encodeURIComponent would also escape "/", which grpc-js shows as "%2F".
 */
function grpcPercentEncode(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}
