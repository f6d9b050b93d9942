import type { Role } from "./permissions.ts";
import type { RateLimitTier } from "./api-keys/api-key-record.ts";

/** How the caller proved who it is. */
export type AuthenticationMethod = "access_token" | "refreshed_access_token" | "api_key" | "exchanged_api_key";

/**
 * The authenticated caller of an RPC, produced once by the authentication interceptor and handed to
 * handlers through the context. Anonymous callers have no principal.
 */
export interface Principal {
  /** "user" for a person's session, "api_key" for a key (possibly exchanged for a JWT). */
  readonly kind: "user" | "api_key";
  /** The user id, or the key id for API keys. */
  readonly id: string;
  /** The user who owns the credential (equals id for users). */
  readonly userId: string;
  /** A human-readable name: the username, or the API key's name (WhoAmI, audit `actor.display_name`). */
  readonly displayName: string;
  readonly role: Role;
  /** Effective permissions: the role's, narrowed by a key's scopes. */
  readonly permissions: ReadonlySet<string>;
  readonly method: AuthenticationMethod;
  /** The session behind an access token; undefined for API keys. */
  readonly sessionId: string | undefined;
  /** Whether the session was established with an MFA code (never for API keys). */
  readonly mfaVerified?: boolean;
  /** When the presented credential stops working (token expiry, key expiry); undefined if never. */
  readonly credentialExpiresAt?: Date | undefined;
  /** An API key's rate-limit tier; undefined (standard budget) for people. */
  readonly rateLimitTier?: RateLimitTier;
}

/** Where a call came from, for rate limits and audit records. */
export interface ClientInfo {
  readonly ip: string;
  readonly userAgent: string;
}
