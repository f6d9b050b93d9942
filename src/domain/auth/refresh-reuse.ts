import { userAuditActor } from "../audit/audit-actor.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { RevocationCache } from "../revocation/revocation-cache.ts";
import type { SessionRecord } from "../sessions/sessions.ts";
import type { UserNames } from "../users/user-names.ts";

/**
 * What follows a replayed refresh token, once the session service has revoked its session: this
 * instance stops accepting the session's access tokens at once (others within a poll), and the replay is
 * audited, naming the user — it means two parties hold the token.
 */
export function createRefreshReuseResponse(deps: { revocations: RevocationCache; audit: AuditRecorder; userNames: UserNames }): (session: SessionRecord) => void {
  return (session) => {
    deps.revocations.noteSessionRevoked(session.id);
    const record = (username: string | undefined) =>
      deps.audit.record({
        type: "auth.refresh_reuse",
        outcome: "denied",
        actor: userAuditActor(session.userId, username ?? session.userId),
        target: { kind: "session", id: session.id },
        reason: "a rotated refresh token was presented again; the session was revoked",
      });
    deps.userNames.nameOf(session.userId).then(record, () => record(undefined));
  };
}
