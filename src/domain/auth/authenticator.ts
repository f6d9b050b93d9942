import { DomainError } from "../errors.ts";
import type { ClientInfo, Principal } from "../principal.ts";
import type { CallOrigin } from "../request-context.ts";

/**
 * The contracts of authentication, declared here because the domain implements them (tokens, API keys)
 * and the authentication and authorization interceptors only consume them.
 */

/** A credential as presented by the caller, before anything is known about it. */
export interface Credential {
  /** `bearer` from `authorization: Bearer …` (a JWT or an API key), `api_key` from `x-api-key`. */
  readonly kind: "bearer" | "api_key";
  readonly value: string;
}

/**
 * Resolves credentials to principals. Implementations throw DomainError("unauthenticated") for anything
 * they do not accept, with a message that does not reveal why (expired, unknown and forged look alike
 * unless the reason is safe to tell).
 */
export interface Authenticator {
  authenticate(credential: Credential, client: ClientInfo): Promise<Principal>;
  /**
   * Follows a principal while one of its streams is open: calls `onChange` with the principal as it now
   * stands (role narrowed, say), or with undefined once its session, key or user is revoked or disabled.
   * Returns the function that stops following. Authenticators whose credentials cannot change need not
   * implement it.
   */
  watch?(principal: Principal, onChange: (current: Principal | undefined) => void): () => void;
}

/** Checks a fresh TOTP or backup code for a principal; consumes it so it cannot be replayed. */
export interface FreshMfaVerifier {
  /**
   * Whether `code` is a valid fresh code of the principal's user. `call` says where the attempt comes
   * from, for the audit record and the login lock; while that lock is on the verifier throws
   * DomainError("resource_exhausted", reason "locked") without checking the code.
   */
  verify(principal: Principal, code: string, call: CallOrigin): Promise<boolean>;
}

/** The authenticator of a gateway with no identity provider wired in: no credential is valid. */
export const rejectAllCredentials: Authenticator = {
  authenticate() {
    return Promise.reject(new DomainError("unauthenticated", "invalid credentials"));
  },
};

/** The verifier of a gateway with no MFA wired in: no code is accepted, so fresh-MFA methods are denied. */
export const rejectAllMfaCodes: FreshMfaVerifier = { verify: () => Promise.resolve(false) };
