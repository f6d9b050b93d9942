import type { ClientInfo, Principal } from "./principal.ts";

/** Who is calling and from where: what domain services need of a call, free of transport types. */
export interface RequestContext {
  readonly principal: Principal;
  readonly client: ClientInfo;
  readonly requestId: string;
}
