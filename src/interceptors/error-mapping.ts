import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { DomainError, type DomainErrorCode, type DomainErrorReason } from "../domain/errors.ts";
import type { Logger } from "../log/logger.ts";
import { requestIdKey } from "../handlers/context-keys.ts";
import type { CallStep } from "./call-step.ts";
import { isStreamResponse, wrapResponseStream } from "./response-stream.ts";

const CODES: Readonly<Record<DomainErrorCode, Code>> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  aborted: Code.Aborted,
  out_of_range: Code.OutOfRange,
  unimplemented: Code.Unimplemented,
  deadline_exceeded: Code.DeadlineExceeded,
};

const REASONS: Readonly<Record<DomainErrorReason, ErrorReason>> = {
  mfa_required: ErrorReason.MFA_REQUIRED,
  fresh_mfa_required: ErrorReason.FRESH_MFA_REQUIRED,
  rate_limited: ErrorReason.RATE_LIMITED,
  locked: ErrorReason.LOCKED,
  credential_expired: ErrorReason.CREDENTIAL_EXPIRED,
  credential_revoked: ErrorReason.CREDENTIAL_REVOKED,
  no_access_rule: ErrorReason.NO_ACCESS_RULE,
  shutting_down: ErrorReason.SHUTTING_DOWN,
  budget_exceeded: ErrorReason.BUDGET_EXCEEDED,
};

// Codes whose message may come from a library or a dependency rather than from us.
const OPAQUE_CODES = new Set([Code.Unknown, Code.Internal, Code.DataLoss]);

/**
 * Turns whatever a call throws into an error that is safe to send. Domain errors become their status
 * code with an ErrorInfo detail; ConnectErrors we raised on purpose pass through; anything else (a driver
 * error, a bug) is logged with the request id and answered as INTERNAL carrying only that id.
 */
export function createErrorMappingStep(logger: Logger): CallStep {
  return {
    leave(res, req) {
      return isStreamResponse(res) ? wrapResponseStream(res, { mapError: (error) => toPublicError(error, req.contextValues.get(requestIdKey), logger) }) : res;
    },
    fail(error, req) {
      return toPublicError(error, req.contextValues.get(requestIdKey), logger);
    },
  };
}

/** Maps one thrown value to the ConnectError the client receives. */
export function toPublicError(error: unknown, requestId: string, logger: Logger): ConnectError {
  if (error instanceof DomainError) {
    const reason = error.reason === undefined ? ErrorReason.UNSPECIFIED : REASONS[error.reason];
    return new ConnectError(error.message, CODES[error.code], undefined, [
      { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, requestId, retryAfterMs: BigInt(error.retryAfterMs ?? 0) }) },
    ]);
  }
  if (error instanceof ConnectError && !OPAQUE_CODES.has(error.code)) return error;
  logger.error({ requestId, err: error }, "internal error");
  return new ConnectError(`internal error (request id ${requestId})`, Code.Internal, undefined, [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: ErrorReason.INTERNAL, requestId }) },
  ]);
}
