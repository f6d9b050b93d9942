import type { ApiKeyLifecycle } from "../api-keys/key-lifecycle.ts";
import type { AccountLocks } from "../auth/account-locks.ts";
import type { RevocationCache } from "../revocation/revocation-cache.ts";
import type { SessionService } from "../sessions/sessions.ts";
import type { ResponseActions } from "./auto-response.ts";

/**
 * The actions the automatic response policy can take, over the identity and API-key services: lock an
 * account (its sessions end with it), revoke a session family, revoke an API key. This instance stops
 * accepting what was revoked at once; others within a poll.
 */
export function createResponseActions(deps: {
  accountLocks: AccountLocks;
  sessions: SessionService;
  revocations: RevocationCache;
  apiKeys: Pick<ApiKeyLifecycle, "revokeForResponse">;
}): ResponseActions {
  return {
    lockAccount: (userId, durationMs, cause) => deps.accountLocks.lock(userId, durationMs, cause),
    async revokeSessionFamily(sessionId) {
      const revoked = await deps.sessions.revoke(sessionId, "auto_response");
      if (revoked) deps.revocations.noteSessionRevoked(sessionId);
      return revoked;
    },
    revokeApiKey: (keyId, cause) => deps.apiKeys.revokeForResponse(keyId, `automatic response to ${cause.kind} (${cause.severity})`),
  };
}
