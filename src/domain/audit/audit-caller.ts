import type { ClientInfo, Principal } from "../principal.ts";
import { auditActorOf } from "./audit-actor.ts";
import type { AuditEventInput } from "./audit-event.ts";

/** What an audit record says about the call behind it; every field is optional (background work has none). */
export interface AuditedCall {
  readonly principal?: Principal | undefined;
  readonly client?: ClientInfo | undefined;
  readonly requestId?: string | undefined;
}

/**
 * The actor, client address, user agent and request id of an audit record, from the call that caused it:
 * the one place they are filled, so every record names its caller the same way (auditActorOf: display
 * name, and the user an API key acts for). A call without a principal is anonymous.
 */
export function auditedCaller(call: AuditedCall): Pick<AuditEventInput, "actor" | "ip" | "userAgent" | "requestId"> {
  return {
    actor: call.principal ? auditActorOf(call.principal) : { kind: "anonymous" },
    ...(call.client ? { ip: call.client.ip, userAgent: call.client.userAgent } : {}),
    ...(call.requestId ? { requestId: call.requestId } : {}),
  };
}
