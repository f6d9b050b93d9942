import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, ErrorReason } from "../../../gen/portcullis/v1/errors_pb.js";
import { CommandError, oneLine } from "../command-error.ts";
import { printable } from "../output/terminal-text.ts";

const NETWORK_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ERR_SSL_WRONG_VERSION_NUMBER"]);

/** `PermissionDenied` → `permission_denied`, the name gRPC and Connect document. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/(?<=[a-z])(?=[A-Z])/g, "_").toLowerCase();
}

/** True when the error is the server saying "a fresh MFA code is needed" for a login. */
export function isMfaRequired(err: unknown): boolean {
  if (!(err instanceof ConnectError) || err.code !== Code.FailedPrecondition) return false;
  return err.findDetails(ErrorInfoSchema).some((info) => info.reason === ErrorReason.MFA_REQUIRED);
}

/** True when the server rejected an access token as expired (the client's clock or stored expiry was off). */
export function isCredentialExpired(err: unknown): boolean {
  if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) return false;
  return err.findDetails(ErrorInfoSchema).some((info) => info.reason === ErrorReason.CREDENTIAL_EXPIRED);
}

/**
 * The CLI's own error behind `err`, if any: a CommandError thrown inside an interceptor (a refused
 * credentials file, an ended login) reaches the caller wrapped in a ConnectError with code UNKNOWN.
 */
export function commandErrorOf(err: unknown): CommandError | undefined {
  if (err instanceof CommandError) return err;
  if (err instanceof ConnectError && err.cause instanceof CommandError) return err.cause;
  return undefined;
}

/**
 * One line describing why a command failed, without a stack: the server's own message and status code
 * name for RPC errors (with the wait time of LOCKED / RATE_LIMITED and the request id of INTERNAL), a
 * plain "cannot reach" for network failures. Server text is made printable first.
 */
export function describeFailure(err: unknown, gatewayUrl: string | undefined): string {
  const own = commandErrorOf(err);
  if (own) return oneLine(own);
  if (!(err instanceof ConnectError)) {
    const network = networkErrorCode(err);
    if (network) return `cannot reach the gateway at ${gatewayUrl ?? "(unknown)"} (${network})`;
    return oneLine(err);
  }
  const network = networkErrorCode(err.cause);
  if (network) return `cannot reach the gateway at ${gatewayUrl ?? "(unknown)"} (${network})`;
  if (err.code === Code.DeadlineExceeded) return `the gateway at ${gatewayUrl ?? "(unknown)"} did not answer in time (deadline_exceeded)`;
  const details: string[] = [codeName(err.code)];
  // Which server said no: with several gateways and credentials about, the first thing to check.
  if (err.code === Code.Unauthenticated && gatewayUrl !== undefined) details.push(`refused by ${gatewayUrl}`);
  const info = err.findDetails(ErrorInfoSchema)[0];
  if (info && info.retryAfterMs > 0n) details.push(`retry in ${Math.ceil(Number(info.retryAfterMs) / 1000)} s`);
  if (info && info.requestId !== "" && err.code === Code.Internal) details.push(`request id ${printable(info.requestId)}`);
  const message = printable(oneLine(err.rawMessage === "" ? codeName(err.code) : err.rawMessage));
  return `${message} (${details.join(", ")})`;
}

function networkErrorCode(err: unknown): string | undefined {
  for (let current = err, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && NETWORK_ERRORS.has(code)) return code;
  }
  return undefined;
}
