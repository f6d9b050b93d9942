import { ROLE_PERMISSIONS, type Role } from "../permissions.ts";
import type { Authenticator } from "./authenticator.ts";
import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";
import type { RevocationCache, UserState } from "../revocation/revocation-cache.ts";
import type { AccessTokenClaims, AccessTokenService } from "../tokens/access-tokens.ts";

export interface TokenAuthenticatorDeps {
  readonly accessTokens: AccessTokenService;
  readonly revocations: RevocationCache;
  /**
   * The user's current role and state, read from the database when the revocation cache does not know
   * the user yet (created on another instance since the last poll). Rare; never on the hot path.
   */
  readonly loadUserState: (userId: string) => Promise<{ role: Role; disabled: boolean } | undefined>;
  /** The user's username (the principal's display name); undefined for an unknown user. Cached: it never changes. */
  readonly userName: (userId: string) => Promise<string | undefined>;
  /**
   * The principal of a token issued by ExchangeApiKey: its key must still work and bounds it. Without it
   * (a gateway with no API keys) such tokens are refused.
   */
  readonly exchangedKeyPrincipal?: (input: { keyId: string; claimedPermissions: readonly string[]; clientIp: string }) => Promise<Principal>;
}

/**
 * Authenticates access tokens (JWTs) without a database round trip on the hot path: the signature and
 * claims are checked locally, and revocation, disabling and role changes come from the revocation
 * cache, which every instance keeps within a second of the database. The principal's permissions are
 * those of the user's CURRENT role, narrowed by the token's own permission claim (an exchanged API key
 * carries fewer), so a demotion takes effect on tokens already issued.
 */
export function createTokenAuthenticator(deps: TokenAuthenticatorDeps): Authenticator {
  // The principal of a token presented again, as long as its user's state object and name are the ones it
  // was made from (the revocation cache replaces the state object when the role or disabled flag change).
  // Keyed by the verified claims, which the token service shares between calls with the same token.
  const principals = new WeakMap<AccessTokenClaims, { state: UserState; displayName: string; principal: Principal }>();

  const principalFor = (base: Principal, state: { role: Role; disabled: boolean } | undefined, claimed: readonly string[]): Principal | undefined => {
    if (state === undefined || state.disabled) return undefined;
    const rolePermissions = ROLE_PERMISSIONS[state.role];
    const permissions = new Set(claimed.filter((p) => rolePermissions.has(p as never)));
    return { ...base, role: state.role, permissions };
  };

  return {
    async authenticate(credential, client) {
      if (credential.kind !== "bearer") throw new DomainError("unauthenticated", "invalid credentials");
      const claims = await deps.accessTokens.verify(credential.value);
      if (deps.revocations.isSessionRevoked(claims.sid)) {
        throw new DomainError("unauthenticated", "session revoked", { reason: "credential_revoked" });
      }
      if (claims.amr === "api_key") {
        const exchanged = deps.exchangedKeyPrincipal;
        if (!exchanged || claims.keyId === undefined) throw new DomainError("unauthenticated", "invalid credentials");
        return exchanged({ keyId: claims.keyId, claimedPermissions: claims.permissions, clientIp: client.ip });
      }
      let state = deps.revocations.userState(claims.sub);
      if (state === undefined) {
        state = await deps.loadUserState(claims.sub);
        if (state) {
          deps.revocations.learnUser(claims.sub, state);
          state = deps.revocations.userState(claims.sub) ?? state;
        }
      }
      const displayName = await deps.userName(claims.sub);
      if (displayName === undefined) throw new DomainError("unauthenticated", "invalid credentials");
      const known = principals.get(claims);
      if (known !== undefined && known.state === state && known.displayName === displayName) return known.principal;
      const base: Principal = {
        kind: "user",
        id: claims.sub,
        userId: claims.sub,
        displayName,
        role: claims.role,
        permissions: new Set(),
        method: claims.amr === "refresh" ? "refreshed_access_token" : "access_token",
        mfaVerified: claims.mfa,
        credentialExpiresAt: new Date(claims.exp * 1000),
        sessionId: claims.sid,
      };
      const principal = principalFor(base, state, claims.permissions);
      if (!principal || !state) throw new DomainError("unauthenticated", "invalid credentials");
      principals.set(claims, { state, displayName, principal });
      return principal;
    },

    watch(principal, onChange) {
      const claimed = [...principal.permissions];
      return deps.revocations.subscribe((change) => {
        if (change.kind === "session" && change.sessionId === principal.sessionId) onChange(undefined);
        if (change.kind === "user" && change.userId === principal.userId) {
          onChange(principalFor(principal, deps.revocations.userState(principal.userId), claimed));
        }
      });
    },
  };
}
