import type { Principal } from "../principal.ts";
import type { AuditActor } from "./audit-event.ts";

/**
 * The audit actor of an authenticated caller, as the contract's AuditActor promises it for every event:
 * a display name (the username, or the API key's name, at the time of the event) and, for an API key,
 * the user it acts for (`on_behalf_of_user_id`).
 */
export function auditActorOf(principal: Pick<Principal, "kind" | "id" | "userId" | "displayName">): AuditActor {
  return principal.kind === "api_key"
    ? { kind: "api_key", id: principal.id, display: principal.displayName, onBehalfOf: principal.userId }
    : { kind: "user", id: principal.id, display: principal.displayName };
}

/** The audit actor of a user known by id and username (a login, a refresh, a user's own change). */
export function userAuditActor(userId: string, username: string): AuditActor {
  return { kind: "user", id: userId, display: username };
}

/** The audit actor of an API key acting for its owner, without a principal at hand (ExchangeApiKey). */
export function apiKeyAuditActor(key: { id: string; name: string; ownerUserId: string }): AuditActor {
  return { kind: "api_key", id: key.id, display: key.name, onBehalfOf: key.ownerUserId };
}
