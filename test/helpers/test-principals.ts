import { ROLE_PERMISSIONS, type Role } from "../../src/domain/permissions.ts";
import type { Authenticator } from "../../src/domain/auth/authenticator.ts";
import { DomainError } from "../../src/domain/errors.ts";
import type { Principal } from "../../src/domain/principal.ts";

/** Test-only bearer tokens, one per role, accepted by `roleTokenAuthenticator`. */
export const ROLE_TOKENS: Readonly<Record<Role, string>> = {
  user: "test-token-user-5f1c",
  admin: "test-token-admin-9b2e",
  owner: "test-token-owner-77ad",
};

/**
 * An authenticator for tests of the interceptor chain and transport, before the identity service
 * exists: each ROLE_TOKENS value authenticates as a user of that role; anything else is rejected.
 */
export const roleTokenAuthenticator: Authenticator = {
  authenticate(credential) {
    for (const [role, token] of Object.entries(ROLE_TOKENS) as Array<[Role, string]>) {
      if (credential.value === token) {
        const principal: Principal = {
          kind: "user",
          id: `${role}-1`,
          userId: `${role}-1`,
          displayName: `${role}-1`,
          role,
          permissions: ROLE_PERMISSIONS[role],
          method: "access_token",
          sessionId: `${role}-session`,
        };
        return Promise.resolve(principal);
      }
    }
    return Promise.reject(new DomainError("unauthenticated", "invalid credentials"));
  },
};
