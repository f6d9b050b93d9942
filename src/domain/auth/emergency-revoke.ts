import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { SessionService } from "../sessions/sessions.ts";

/** Revokes every API key; implemented by the API-key lifecycle (src/domain/api-keys/key-lifecycle.ts). */
export interface ApiKeyMassRevoker {
  /** Revokes every key of every user; resolves with how many this call revoked. */
  revokeEveryKey(reason: string): Promise<number>;
}

/** The break-glass action, on behalf of an owner's session; resolves with the counts and the id of its audit event. */
export type EmergencyRevoke = (ctx: RequestContext, reason: string) => Promise<{ sessionsRevoked: number; apiKeysRevoked: number; auditEventId: string }>;

/**
 * The break-glass action: every session and every API key of every user is revoked, except the
 * caller's current session so the owner can keep working. The permission (`system.emergency`, owners
 * only) and the fresh MFA code are checked by the authorization interceptor from the method's rule.
 * Other instances stop accepting the revoked credentials within a second (revocation cache poll).
 */
export function createEmergencyRevoke(deps: {
  sessions: SessionService;
  apiKeys: ApiKeyMassRevoker;
  audit: AuditRecorder;
  /** Makes this instance's revocation cache see the mass revocation now rather than at its next poll. */
  refreshRevocations: () => Promise<void>;
}): EmergencyRevoke {
  return async (ctx, reasonRaw) => {
    const reason = reasonRaw.trim();
    if (reason === "") throw new DomainError("invalid_argument", "a reason is required");
    if (reason.length > 500) throw new DomainError("invalid_argument", "the reason is longer than 500 characters");
    if (ctx.principal.sessionId === undefined) throw new DomainError("failed_precondition", "emergency revoke needs a user session, not an API key");
    const sessionsRevoked = await deps.sessions.revokeAll(`emergency: ${reason}`, ctx.principal.sessionId);
    await deps.refreshRevocations();
    const apiKeysRevoked = await deps.apiKeys.revokeEveryKey(`emergency: ${reason}`);
    const auditEventId = await deps.audit.recordNow({
      type: "system.emergency_revoke",
      outcome: "success",
      ...auditedCaller(ctx),
      reason,
      // (metadata names avoid "key": the recorder redacts secret-looking names)
      metadata: { revoked_sessions: sessionsRevoked, revoked_api_credentials: apiKeysRevoked },
    });
    return { sessionsRevoked, apiKeysRevoked, auditEventId };
  };
}
