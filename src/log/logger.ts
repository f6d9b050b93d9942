import { pino, type DestinationStream, type Logger } from "pino";
import { createBatchedDestination } from "./batched-destination.ts";

export type { Logger } from "pino";

/**
 * Field names whose values are secrets wherever they appear in a logged object. The logging code never
 * passes request bodies or credentials to the logger; this list is the second line of defence.
 */
const SECRET_FIELDS = [
  "authorization",
  "cookie",
  "password",
  "newPassword",
  "currentPassword",
  "token",
  "accessToken",
  "refreshToken",
  "apiKey",
  "secret",
  "mfaCode",
  "totpCode",
  "backupCode",
  "backupCodes",
  "totpSecret",
  "x-api-key",
  "x-mfa-code",
];

const SECRET_FIELD_NAMES = new Set(SECRET_FIELDS.map((field) => field.toLowerCase()));
const CENSOR = "[redacted]";
const MAX_REDACT_DEPTH = 8;

/**
 * `value` with every secret-named field (any letter case, in objects, arrays and errors) replaced by
 * the censor; `value` itself when it has none. Errors become pino's serialised form (message, stack,
 * own fields) so their fields are censored too; anything nested deeper than MAX_REDACT_DEPTH is cut.
 * pino's own `redact` needs explicit paths, and its wildcard paths cost ~75 µs per line on a slow machine
 * (more than the rest of a small RPC's logging); this walk costs about a microsecond for a typical line.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > MAX_REDACT_DEPTH) return "[too deep]";
  if (value instanceof Error) return redactSecrets({ ...pino.stdSerializers.err(value) }, depth);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const redacted = redactSecrets(value[i], depth + 1);
      if (redacted !== value[i]) {
        copy ??= [...value];
        copy[i] = redacted;
      }
    }
    return copy ?? value;
  }
  // An object is written as what its toJSON returns (dates, buffers…), else as its own enumerable
  // fields whatever its class: walk exactly that.
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return redactSecrets(toJSON.call(value) as unknown, depth + 1);
  let copy: Record<string, unknown> | undefined;
  for (const [key, field] of Object.entries(value)) {
    const redacted = SECRET_FIELD_NAMES.has(key.toLowerCase()) ? CENSOR : redactSecrets(field, depth + 1);
    if (redacted !== field) {
      copy ??= { ...value };
      copy[key] = redacted;
    }
  }
  return copy ?? value;
}

// Lines are gathered up to this many characters, or for at most FLUSH_INTERVAL_MS, then written at once
// (batched-destination.ts): one system call per batch instead of one per RPC (a fifth of a small call's
// cost on a slow machine), and sonic-boom's per-write bookkeeping once per batch instead of per line.
const BATCH_CHARS = 8 * 1024;
const FLUSH_INTERVAL_MS = 100;

function batchedStdout(): DestinationStream {
  // sonic-boom keeps the same minimum: a batch of BATCH_CHARS starts its (asynchronous) write at once, while
  // the few lines passed on by `flushSync` (after `logger.fatal`) or at exit stay under it, so that they are
  // written synchronously by its flushSync rather than by an asynchronous write the exit could cut short.
  return createBatchedDestination(pino.destination({ dest: 1, sync: false, minLength: BATCH_CHARS }), { batchChars: BATCH_CHARS, intervalMs: FLUSH_INTERVAL_MS });
}

/**
 * Creates the gateway's JSON logger. `destination` lets tests capture the lines. By default lines go to
 * stdout asynchronously and in batches (written within 100 ms): a synchronous write to a slow pipe would
 * stall the event loop, and with it every call. Buffered lines are flushed on exit (after
 * `logger.fatal` and `process.exit` too) and by `logger.flush()` on shutdown.
 */
export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: "portcullis" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redactSecrets(object) as Record<string, unknown>,
      },
    },
    options.destination ?? batchedStdout(),
  );
}

/** The fields of the one line each RPC writes when it ends (msg "rpc"). */
export interface RpcLine {
  readonly requestId: string;
  /** "package.Service/Method". */
  readonly method: string;
  /** The status code as logged: "ok", "invalid_argument"… */
  readonly code: string;
  readonly durationMs: number;
  /** "user:<id>" or "api_key:<id>"; left out for anonymous calls. */
  readonly principal: string | undefined;
  /** The client's address; left out when unknown. */
  readonly ip: string | undefined;
}

/**
 * The writer of the per-RPC access line: the same JSON line `logger.info(line, "rpc")` writes (level,
 * time, service, the fields, msg), built directly and handed to the logger's own destination, so it
 * stays in order with every other line and goes wherever they go (tests capture it the same way).
 *
 * It is the one line every call writes, and pino's general path (formatters, the redaction walk, a
 * new Date per line, its serializer's per-key checks) cost several microseconds of each small call.
 * Its fields are fixed and none is a secret, so nothing is redacted; strings are JSON-escaped. Lines of
 * failed calls (internal, unknown) go through `logger.error` as before: rare, and worth the full path.
 */
export function createRpcLog(logger: Logger): (line: RpcLine) => void {
  const destination = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
  if (destination === undefined) return (line) => logger.info(line, "rpc");
  const prefix = `{"level":"info","time":"`;
  const service = `","service":${JSON.stringify((logger.bindings() as { service?: string }).service ?? "portcullis")}`;
  return (line) => {
    if (!logger.isLevelEnabled("info")) return;
    let text = `${prefix}${isoNow()}${service},"requestId":${JSON.stringify(line.requestId)},"method":${JSON.stringify(line.method)},"code":${JSON.stringify(line.code)},"durationMs":${line.durationMs}`;
    if (line.principal !== undefined) text += `,"principal":${JSON.stringify(line.principal)}`;
    if (line.ip !== undefined) text += `,"ip":${JSON.stringify(line.ip)}`;
    destination.write(`${text},"msg":"rpc"}\n`);
  };
}

let lastMs = Number.NaN;
let lastIso = "";

/** The current time as pino's isoTime writes it; one Date per millisecond however many lines share it. */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}
