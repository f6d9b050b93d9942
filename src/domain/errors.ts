/**
 * Errors the domain raises on purpose. They carry a stable code (mapped to a gRPC status by the
 * error-mapping interceptor) and a message that is safe to show the caller. Anything else thrown is an
 * internal failure: logged with the request id and answered as INTERNAL with no detail.
 */
export type DomainErrorCode =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "unauthenticated"
  | "failed_precondition"
  | "resource_exhausted"
  | "unavailable"
  | "aborted"
  | "out_of_range"
  | "unimplemented"
  | "deadline_exceeded";

/** Machine-readable refinements a client can act on; mirrors portcullis.v1.ErrorReason. */
export type DomainErrorReason =
  | "mfa_required"
  | "fresh_mfa_required"
  | "rate_limited"
  | "locked"
  | "credential_expired"
  | "credential_revoked"
  | "no_access_rule"
  | "shutting_down"
  | "budget_exceeded";

export class DomainError extends Error {
  readonly code: DomainErrorCode;
  readonly reason: DomainErrorReason | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: DomainErrorCode, message: string, options: { reason?: DomainErrorReason; retryAfterMs?: number } = {}) {
    super(message);
    this.name = "DomainError";
    this.code = code;
    this.reason = options.reason;
    this.retryAfterMs = options.retryAfterMs;
  }
}
