import type { Authenticator } from "../../interceptors/authentication.ts";
import type { ApiKeyAuthenticator } from "./api-key-authenticator.ts";

/**
 * The gateway's authenticator: `x-api-key`, and bearer values that carry the key prefix, are API keys;
 * every other bearer value is an access token (including tokens exchanged for a key).
 */
export function createCredentialRouter(deps: { tokens: Authenticator; apiKeys: ApiKeyAuthenticator; isApiKey: (value: string) => boolean }): Authenticator {
  return {
    authenticate(credential, client) {
      if (credential.kind === "api_key" || deps.isApiKey(credential.value)) return deps.apiKeys.authenticate(credential, client);
      return deps.tokens.authenticate(credential, client);
    },
    watch(principal, onChange) {
      if (principal.kind === "api_key") return deps.apiKeys.watch(principal, onChange);
      return deps.tokens.watch?.(principal, onChange) ?? (() => undefined);
    },
  };
}
