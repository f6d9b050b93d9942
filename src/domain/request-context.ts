import type { ClientInfo, Principal } from "./principal.ts";

/** Who is calling, from where, and under which request id: what every domain action needs to know of a call. */
export interface RequestContext {
  readonly principal: Principal;
  readonly client: ClientInfo;
  readonly requestId: string;
}
