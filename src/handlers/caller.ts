import type { HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../domain/errors.ts";
import type { CallOrigin, RequestContext } from "../domain/request-context.ts";
import { clientKey, principalKey, requestIdKey } from "./context-keys.ts";

/**
 * The caller of an authenticated method, as the domain receives it. The interceptors guarantee a
 * principal on every non-public method; its absence here is answered UNAUTHENTICATED all the same.
 */
export function callerOf(ctx: HandlerContext): RequestContext {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw new DomainError("unauthenticated", "credentials required");
  return { principal, client: ctx.values.get(clientKey), requestId: ctx.values.get(requestIdKey) };
}

/** Where an anonymous call (login, refresh, key exchange) came from, and its request id. */
export function originOf(ctx: HandlerContext): CallOrigin {
  return { client: ctx.values.get(clientKey), requestId: ctx.values.get(requestIdKey) };
}
