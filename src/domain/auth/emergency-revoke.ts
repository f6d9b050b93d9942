import { auditActorOf } from "../audit/audit-actor.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { SessionService } from "../sessions/sessions.ts";
import type { ActionContext } from "./session-actions.ts";

/** Revokes every API key; implemented by the API-key layer (src/app/api-keys.ts). */
export interface ApiKeyMassRevoker {
  revokeAll(reason: string): Promise<number>;
}

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
}) {
  return async (ctx: ActionContext, reasonRaw: string): Promise<{ sessionsRevoked: number; apiKeysRevoked: number; auditEventId: string }> => {
    const reason = reasonRaw.trim();
    if (reason === "") throw new DomainError("invalid_argument", "a reason is required");
    if (reason.length > 500) throw new DomainError("invalid_argument", "the reason is longer than 500 characters");
    if (ctx.principal.sessionId === undefined) throw new DomainError("failed_precondition", "emergency revoke needs a user session, not an API key");
    const sessionsRevoked = await deps.sessions.revokeAll(`emergency: ${reason}`, ctx.principal.sessionId);
    await deps.refreshRevocations();
    const apiKeysRevoked = await deps.apiKeys.revokeAll(`emergency: ${reason}`);
    const auditEventId = await deps.audit.recordNow({
      type: "system.emergency_revoke",
      outcome: "success",
      actor: auditActorOf(ctx.principal),
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent,
      requestId: ctx.requestId,
      reason,
      // (metadata names avoid "key": the recorder redacts secret-looking names)
      metadata: { revoked_sessions: sessionsRevoked, revoked_api_credentials: apiKeysRevoked },
    });
    return { sessionsRevoked, apiKeysRevoked, auditEventId };
  };
}
