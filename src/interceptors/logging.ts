import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createRpcLog, type Logger } from "../log/logger.ts";
import { clientKey, principalKey, requestIdKey } from "../handlers/context-keys.ts";
import { isStreamResponse, wrapResponseStream } from "./response-stream.ts";

/**
 * Writes one log line per RPC when it ends: method, status code, duration, principal id, request id and
 * client IP. Streams are logged when the stream ends, not when it starts. Messages, headers and
 * credentials are never logged.
 */
export function createLoggingInterceptor(logger: Logger): Interceptor {
  const rpcLog = createRpcLog(logger);
  return (next) => async (req) => {
    const started = performance.now();
    const finish = (error: unknown) => {
      const code = error === undefined ? "ok" : codeName(error);
      const principal = req.contextValues.get(principalKey);
      const line = {
        requestId: req.contextValues.get(requestIdKey),
        method: `${req.service.typeName}/${req.method.name}`,
        code,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        principal: principal ? `${principal.kind}:${principal.id}` : undefined,
        ip: req.contextValues.get(clientKey).ip || undefined,
      };
      if (code === "internal" || code === "unknown") logger.error(line, "rpc");
      else rpcLog(line);
    };
    let res;
    try {
      res = await next(req);
    } catch (error) {
      finish(error);
      throw error;
    }
    if (isStreamResponse(res)) return wrapResponseStream(res, { onEnd: finish });
    finish(undefined);
    return res;
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
