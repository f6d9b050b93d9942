import { create, type JsonReadOptions } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ContextValues, type Interceptor } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { requestIdKey } from "../handlers/context-keys.ts";
import { universalRequestOf, type NodeRequest as NodeServerRequest, type NodeResponse as NodeServerResponse } from "./node-request.ts";
import { writeUnaryResponse } from "./node-response.ts";
import { discardRefusedRequestBody } from "./refused-request-body.ts";
import { bodyFormatOf, checkRequestBody } from "./request-body-check.ts";
import { checkedUnaryBody } from "./unary-request-body.ts";
import { answerUnknownMethod, methodNameOf } from "./unknown-method.ts";

/** The Node request and response types connect-node accepts (http and http2). */
export type { NodeRequest as NodeServerRequest, NodeResponse as NodeServerResponse } from "./node-request.ts";

/**
 * JSON requests are read strictly on every protocol that carries JSON (Connect, gRPC and gRPC-Web with
 * `+json`): an unknown field or enum name is INVALID_ARGUMENT, never silently dropped — a typo must
 * not widen a filter (`{"role": "ROLE_GOD"}` would otherwise list every user).
 */
export const STRICT_JSON: Partial<JsonReadOptions> = Object.freeze({ ignoreUnknownFields: false });

/** A call answered by the transport itself, before any interceptor ran (so none logged it). */
export interface RefusedCall {
  readonly requestId: string;
  /** "package.Service/Method"; for an unknown method, the name asked for (or "(unknown path)"). */
  readonly method: string;
  readonly code: Code;
  readonly durationMs: number;
  readonly contextValues: ContextValues;
}

export interface RpcAdapterOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly interceptors: Interceptor[];
  /** Largest accepted request message, before and after decompression. */
  readonly readMaxBytes: number;
  readonly shutdownSignal: AbortSignal;
  /** The context values of a call, request id included, made when the request arrives. */
  readonly contextValues: (req: NodeServerRequest) => ContextValues;
  readonly onRefused: (call: RefusedCall) => void;
  /** A handler failed outside any call's error handling (a bug): reported, never thrown. */
  readonly onFailure: (error: unknown, method: string) => void;
}

/**
 * The Node request handler for every RPC: what connect-node's `connectNodeAdapter` does, plus what the
 * gateway needs around it:
 *
 * - each request body is checked message by message before connect-es reads it (request-body-check.ts),
 *   so malformed or corrupt requests are INVALID_ARGUMENT with the request id on every protocol;
 * - unary calls refused that way never reach the interceptors, so they are reported here, once;
 * - an unknown method is answered as its protocol expects (grpc-status 12 for gRPC, 404 for Connect).
 */
export function createRpcAdapter(options: RpcAdapterOptions): (req: NodeServerRequest, res: NodeServerResponse) => void {
  const compressions = [compressionGzip, compressionBrotli];
  const router = createConnectRouter({
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    shutdownSignal: options.shutdownSignal,
    jsonOptions: STRICT_JSON,
    acceptCompression: compressions,
  });
  options.routes(router);
  const handlers = new Map<string, UniversalHandler>(router.handlers.map((handler) => [handler.requestPath, handler]));

  return (req, res) => {
    const started = performance.now();
    const contextValues = options.contextValues(req);
    const requestId = contextValues.get(requestIdKey);
    const path = (req.url ?? "").split("?")[0] ?? "";
    const refused = (method: string, code: Code) => options.onRefused({ requestId, method, code, durationMs: performance.now() - started, contextValues });
    const handler = handlers.get(path);
    if (handler === undefined) {
      if (answerUnknownMethod(req, res, requestId) !== undefined) refused(methodNameOf(path) ?? "(unknown path)", Code.Unimplemented);
      return;
    }
    const method = `${handler.service.typeName}/${handler.method.name}`;
    const unary = handler.method.methodKind === "unary";
    let uReq;
    try {
      uReq = universalRequestOf(req, res, req, contextValues);
    } catch (error) {
      // An authority no URL can hold (`Host: a b`, a port past 65535): connect-es cannot take the call,
      // and connect-node's own conversion would throw out of the request event and end the process.
      res.writeHead(
        400,
        "httpVersionMajor" in req && req.httpVersionMajor === 1 ? { "x-request-id": requestId, "Content-Length": "0", Connection: "close" } : { "x-request-id": requestId, "content-length": "0" },
      );
      res.end();
      refused(method, ConnectError.from(error).code);
      return;
    }
    const format = bodyFormatOf(uReq.header, handler.method);
    if (format !== undefined) {
      // Unary requests are read before the interceptors run; streaming ones inside them, where the
      // logging interceptor reports the error like any other.
      const reject = (code: Code, message: string): ConnectError => {
        if (unary) refused(method, code);
        discardRefusedRequestBody(req, res);
        return new ConnectError(message, code, { "x-request-id": requestId }, [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: ErrorReason.UNSPECIFIED, requestId }) }]);
      };
      // A Connect unary body declared too large would be refused by connect-es before the check reads
      // it, with no request id and no log line: the check refuses it instead, at once, like any other.
      const declared = format.framing === "whole" ? req.headers["content-length"] : undefined;
      const declaredBytes = declared === undefined ? undefined : Number(declared);
      if (declaredBytes !== undefined && declaredBytes > options.readMaxBytes) uReq.header.delete("content-length");
      const check = {
        input: handler.method.input,
        format,
        readMaxBytes: options.readMaxBytes,
        ...(declaredBytes !== undefined ? { declaredBytes } : {}),
        jsonOptions: STRICT_JSON,
        compressions,
        reject,
      };
      uReq.body = unary ? checkedUnaryBody(req, check) : checkRequestBody(req, check);
    }
    handler(uReq)
      .then((uRes) => (unary ? writeUnaryResponse(uRes, res) : universalResponseToNodeResponse(uRes, res)))
      .catch((reason: unknown) => {
        // A client that went away mid-response is not a failure.
        if (ConnectError.from(reason).code !== Code.Aborted) options.onFailure(reason, method);
      });
  };
}
