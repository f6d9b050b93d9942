import { looksLikeApiKey } from "../api-keys/key-format.ts";
import type { RevocationCache } from "../revocation/revocation-cache.ts";
import type { UserStateReader } from "../revocation/user-state.ts";
import type { AccessTokenService } from "../tokens/access-tokens.ts";
import type { ApiKeyAuthenticator } from "./api-key-authenticator.ts";
import type { Authenticator } from "./authenticator.ts";
import { createTokenAuthenticator } from "./token-authenticator.ts";

/**
 * The gateway's authenticator: `x-api-key`, and bearer values that carry the key prefix, are API keys;
 * every other bearer value is an access token. A token exchanged for an API key is resolved through its
 * key (which must still work and bounds it), so the router is built after the API keys, in one pass.
 */
export function createCredentialRouter(deps: {
  accessTokens: AccessTokenService;
  revocations: RevocationCache;
  userState: UserStateReader;
  /** A user's name, for the principal's display name. */
  userName: (userId: string) => Promise<string | undefined>;
  apiKeys: ApiKeyAuthenticator;
  /** The configured API-key prefix: a bearer value with it is a key, not a token. */
  keyPrefix: string;
}): Authenticator {
  const tokens = createTokenAuthenticator({
    accessTokens: deps.accessTokens,
    revocations: deps.revocations,
    loadUserState: deps.userState,
    userName: deps.userName,
    exchangedKeyPrincipal: (input) => deps.apiKeys.exchangedTokenPrincipal(input),
  });
  return {
    authenticate(credential, client) {
      if (credential.kind === "api_key" || looksLikeApiKey(deps.keyPrefix, credential.value)) return deps.apiKeys.authenticate(credential, client);
      return tokens.authenticate(credential, client);
    },
    watch(principal, onChange) {
      if (principal.kind === "api_key") return deps.apiKeys.watch(principal, onChange);
      return tokens.watch?.(principal, onChange) ?? (() => undefined);
    },
  };
}
