import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { RevocationCache } from "../revocation/revocation-cache.ts";
import type { SessionRecord } from "../sessions/sessions.ts";

/**
 * What follows a replayed refresh token, once the session service has revoked its session: this
 * instance stops accepting the session's access tokens at once (others within a poll), and the replay is
 * audited — it means two parties hold the token.
 */
export function createRefreshReuseResponse(deps: { revocations: RevocationCache; audit: AuditRecorder }): (session: SessionRecord) => void {
  return (session) => {
    deps.revocations.noteSessionRevoked(session.id);
    deps.audit.record({
      type: "auth.refresh_reuse",
      outcome: "denied",
      actor: { kind: "user", id: session.userId },
      target: { kind: "session", id: session.id },
      reason: "a rotated refresh token was presented again; the session was revoked",
    });
  };
}
