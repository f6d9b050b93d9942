import { createContextKey, type ContextValues } from "@connectrpc/connect";
import type { ClientInfo, Principal } from "../domain/principal.ts";
import type { Credential } from "../domain/auth/authenticator.ts";

/** The request id of the current call: taken from a well-formed `x-request-id` header or generated. */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The authenticated caller; undefined for anonymous calls to public methods. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "principal" });

/** The client's address and user agent, set by the transport. */
export const clientKey = createContextKey<ClientInfo>({ ip: "", userAgent: "" }, { description: "client" });

/**
 * The credential that authenticated the call, as the authentication interceptor read it; undefined
 * for anonymous calls. Only for calls whose contract is about that very credential (GetTokenInfo with
 * an empty token): it is a secret, never logged or returned.
 */
export const credentialKey = createContextKey<Credential | undefined>(undefined, { description: "credential" });

/**
 * How many credential header fields (`authorization`, `x-api-key`) the request carried as received,
 * before the HTTP layer dropped or merged duplicates; set by the transport. More than one is ambiguous.
 */
export const credentialHeaderCountKey = createContextKey<number>(0, { description: "credential header count" });

/** The credential header fields of a call as received (values trimmed as fetch Headers trims them). */
export interface CredentialHeaders {
  readonly authorization: string | undefined;
  readonly apiKey: string | undefined;
}

/**
 * The call's `authorization` and `x-api-key` values, set by the transport; they are not in the call's
 * Headers. A JWT is ~750 characters, and fetch Headers checks every value it is given character by
 * character — once when the transport builds the call's Headers and once more when connect-es copies them
 * into the handler context — which cost more than anything else the transport does with a header. Only
 * the authentication steps read credentials, so only they get them; handlers never see them.
 * Undefined when the call did not come through the gateway's transport (an in-process router transport
 * in tests): the credentials are then in the call's Headers, where connect-es put them.
 */
export const credentialHeadersKey = createContextKey<CredentialHeaders | undefined>(undefined, { description: "credential headers" });

/** The call's credential header values: from the transport's context value, else from its Headers. */
export function credentialHeadersOf(contextValues: ContextValues, header: Headers): CredentialHeaders {
  return contextValues.get(credentialHeadersKey) ?? { authorization: header.get("authorization") ?? undefined, apiKey: header.get("x-api-key") ?? undefined };
}
