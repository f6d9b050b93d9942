import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import { createRpcLog, type Logger } from "../log/logger.ts";
import { clientKey, principalKey, requestIdKey } from "../handlers/context-keys.ts";
import type { CallRequest, CallStep } from "./call-step.ts";
import { isStreamResponse, wrapResponseStream } from "./response-stream.ts";

// When the call reached the logging step: its line's duration is measured from there.
const startedKey = createContextKey<number>(0, { description: "call started (logging)" });

/**
 * Writes one log line per RPC when it ends: method, status code, duration, principal id, request id and
 * client IP. Streams are logged when the stream ends, not when it starts. Messages, headers and
 * credentials are never logged.
 */
export function createLoggingStep(logger: Logger): CallStep {
  const rpcLog = createRpcLog(logger);
  const finish = (req: CallRequest, error: unknown) => {
    const code = error === undefined ? "ok" : codeName(error);
    const principal = req.contextValues.get(principalKey);
    const line = {
      requestId: req.contextValues.get(requestIdKey),
      method: `${req.service.typeName}/${req.method.name}`,
      code,
      durationMs: Math.round((performance.now() - req.contextValues.get(startedKey)) * 100) / 100,
      principal: principal ? `${principal.kind}:${principal.id}` : undefined,
      ip: req.contextValues.get(clientKey).ip || undefined,
    };
    if (code === "internal" || code === "unknown") logger.error(line, "rpc");
    else rpcLog(line);
  };
  return {
    enter(req) {
      req.contextValues.set(startedKey, performance.now());
    },
    leave(res, req) {
      if (isStreamResponse(res)) return wrapResponseStream(res, { onEnd: (error) => finish(req, error) });
      finish(req, undefined);
      return res;
    },
    fail(error, req) {
      finish(req, error);
      return error;
    },
  };
}

function codeName(error: unknown): string {
  return statusName(error instanceof ConnectError ? error.code : Code.Unknown);
}

const STATUS_NAMES = new Map<Code, string>(
  Object.values(Code)
    .filter((code): code is Code => typeof code === "number")
    .map((code) => [code, Code[code].replace(/[A-Z]/g, (c, i: number) => (i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`))]),
);

/** A status code as logged: "invalid_argument", "unimplemented"… */
export function statusName(code: Code): string {
  return STATUS_NAMES.get(code) ?? String(code);
}
