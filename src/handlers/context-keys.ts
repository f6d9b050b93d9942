import { createContextKey } from "@connectrpc/connect";
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
