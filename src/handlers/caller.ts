import type { HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../domain/errors.ts";
import type { RequestContext } from "../domain/request-context.ts";
import { clientKey, principalKey, requestIdKey } from "../interceptors/context-keys.ts";

/** The caller of an RPC whose access rule requires a principal (the interceptors guarantee one). */
export function callerOf(ctx: HandlerContext): RequestContext {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw new DomainError("unauthenticated", "credentials required");
  return { principal, client: ctx.values.get(clientKey), requestId: ctx.values.get(requestIdKey) };
}
