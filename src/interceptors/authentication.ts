import type { StreamResponse } from "@connectrpc/connect";
import { accessRuleOf, type AccessRule } from "../access/access-rules.ts";
import type { Authenticator, Credential } from "../domain/auth/authenticator.ts";
import { DomainError } from "../domain/errors.ts";
import type { Principal } from "../domain/principal.ts";
import { clientKey, credentialHeaderCountKey, credentialHeadersOf, credentialKey, principalKey, type CredentialHeaders } from "../handlers/context-keys.ts";
import type { CallStep } from "./call-step.ts";

// Longer than any JWT or key we issue; refuse before parsing so garbage costs nothing.
const MAX_CREDENTIAL_LENGTH = 8192;

/**
 * Authenticates every call that carries credentials, and every call to a non-public method. A call
 * carrying more than one credential is refused (UNAUTHENTICATED), never read as its first. The
 * principal goes into the context for the interceptors and handlers after it; handlers never parse
 * credentials themselves. Credentials sent to a public method must still be valid: a bad token is an
 * error, never silently anonymous.
 */
export function createAuthenticationStep(authenticator: Authenticator): CallStep {
  const watch = authenticator.watch?.bind(authenticator);
  return {
    enter(req) {
      // Two credentials (two `authorization` fields, or `authorization` and `x-api-key`) are ambiguous:
      // which one is meant is a guess, so none is taken.
      if (req.contextValues.get(credentialHeaderCountKey) > 1) throw new DomainError("unauthenticated", "send exactly one credential: one authorization or one x-api-key header");
      const credential = readCredential(credentialHeadersOf(req.contextValues, req.header));
      if (credential === undefined) {
        if (accessRuleOf(req.method)?.audience !== "public") throw new DomainError("unauthenticated", "credentials required");
        return;
      }
      return authenticator.authenticate(credential, req.contextValues.get(clientKey)).then((principal) => {
        req.contextValues.set(principalKey, principal);
        req.contextValues.set(credentialKey, credential);
      });
    },
    leave(res, req) {
      // Only a stream opened with credentials is followed (an anonymous one has nothing to revoke).
      const principal = req.contextValues.get(principalKey);
      if (!res.stream || watch === undefined || principal === undefined) return res;
      return endOnRevocation(res, principal, accessRuleOf(req.method), watch);
    },
  };
}

/**
 * Streams are not a way around revocation: while a server stream runs, the principal is followed, and
 * the stream ends with UNAUTHENTICATED as soon as its credential is revoked, its user disabled, or its
 * permissions no longer cover the method.
 */
function endOnRevocation(res: StreamResponse, principal: Principal, rule: AccessRule | undefined, watch: NonNullable<Authenticator["watch"]>): StreamResponse {
  let revoke: ((error: DomainError) => void) | undefined;
  const revoked = new Promise<never>((_resolve, reject) => (revoke = reject));
  revoked.catch(() => undefined); // observed below; never an unhandled rejection
  const stopWatching = watch(principal, (current) => {
    if (current === undefined) revoke?.(new DomainError("unauthenticated", "credentials revoked", { reason: "credential_revoked" }));
    else if (rule?.audience === "permission" && !current.permissions.has(rule.permission)) {
      revoke?.(new DomainError("unauthenticated", `permission ${rule.permission} was withdrawn`, { reason: "credential_revoked" }));
    }
  });
  const source = res.message[Symbol.asyncIterator]();
  async function* guarded() {
    try {
      for (;;) {
        const step = await Promise.race([source.next(), revoked]);
        if (step.done) return;
        yield step.value;
      }
    } finally {
      stopWatching();
      // Let the handler's generator run its cleanup; it may be parked on an await, so don't wait for it.
      void source.return?.(undefined)?.catch(() => undefined);
    }
  }
  return { ...res, message: guarded() };
}

function readCredential({ authorization, apiKey }: CredentialHeaders): Credential | undefined {
  if (authorization !== undefined && apiKey !== undefined) {
    throw new DomainError("unauthenticated", "send either authorization or x-api-key, not both");
  }
  if (apiKey !== undefined) return { kind: "api_key", value: checkedValue(apiKey) };
  if (authorization === undefined) return undefined;
  const match = /^Bearer +(\S+)\s*$/i.exec(authorization);
  if (!match?.[1]) throw new DomainError("unauthenticated", "authorization must be 'Bearer <token>'");
  return { kind: "bearer", value: checkedValue(match[1]) };
}

function checkedValue(value: string): string {
  const trimmed = value.trim();
  // Printable ASCII only: every credential we issue is, and anything else is garbage or an attack.
  if (trimmed.length === 0 || trimmed.length > MAX_CREDENTIAL_LENGTH || !/^[\x21-\x7e]+$/.test(trimmed)) {
    throw new DomainError("unauthenticated", "malformed credentials");
  }
  return trimmed;
}
