import type { ClientInfo, Principal } from "./principal.ts";

/**
 * Who is acting, from where, in which call: what every domain action that is audited or decides
 * access by its caller receives. Handlers build it with `callerOf(ctx)` (src/handlers/caller.ts); the
 * domain never sees the transport's context itself.
 */
export interface RequestContext extends CallOrigin {
  readonly principal: Principal;
  readonly client: ClientInfo;
  readonly requestId: string;
}

/** Where a call comes from, whoever makes it: all an anonymous call (Login, Refresh, ExchangeApiKey) has. */
export interface CallOrigin {
  readonly client: ClientInfo;
  readonly requestId: string;
}
