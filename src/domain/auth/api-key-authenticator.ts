import type { Credential } from "./authenticator.ts";
import type { ApiKeyCache } from "../api-keys/api-key-cache.ts";
import type { ApiKeyVerifier, KeyRejection, KeyVerdict } from "../api-keys/api-key-verifier.ts";
import type { UsageTracker } from "../api-keys/usage-tracker.ts";
import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { ClientInfo, Principal } from "../principal.ts";
import type { RevocationCache } from "../revocation/revocation-cache.ts";

/** How each refusal is told to the caller: unknown and forged keys look alike. */
export function keyRejectionError(rejection: KeyRejection): DomainError {
  switch (rejection) {
    case "revoked":
    case "rotated":
      return new DomainError("unauthenticated", "API key revoked", { reason: "credential_revoked" });
    case "expired":
      return new DomainError("unauthenticated", "API key expired", { reason: "credential_expired" });
    case "owner_disabled":
      return new DomainError("unauthenticated", "API key revoked", { reason: "credential_revoked" });
    case "network":
      return new DomainError("permission_denied", "this API key may not be used from this network");
    default:
      return new DomainError("unauthenticated", "invalid credentials");
  }
}

export interface ApiKeyAuthenticator {
  /** A key sent as `x-api-key` or as a bearer value with the key prefix. */
  authenticate(credential: Credential, client: ClientInfo): Promise<Principal>;
  /** The principal of an access token issued by ExchangeApiKey: the key must still work, and narrows it. */
  exchangedTokenPrincipal(input: { keyId: string; claimedPermissions: readonly string[]; clientIp: string }): Promise<Principal>;
  /** Follows an API-key principal (direct or exchanged) while its stream is open. */
  watch(principal: Principal, onChange: (current: Principal | undefined) => void): () => void;
}

export function createApiKeyAuthenticator(deps: { verifier: ApiKeyVerifier; cache: ApiKeyCache; revocations: RevocationCache; usage: UsageTracker; audit: AuditRecorder }): ApiKeyAuthenticator {
  const principalOf = (verdict: Extract<KeyVerdict, { ok: true }>, method: Principal["method"], sessionId: string | undefined, bound?: ReadonlySet<string>): Principal => {
    const { state, ownerRole, permissions } = verdict.key;
    return {
      kind: "api_key",
      id: state.record._id,
      userId: state.record.ownerUserId,
      displayName: state.record.name,
      role: ownerRole,
      permissions: bound ? new Set([...permissions].filter((p) => bound.has(p))) : permissions,
      method,
      sessionId,
      mfaVerified: false,
      credentialExpiresAt: state.record.expiresAt,
      rateLimitTier: state.record.tier,
    };
  };

  // Wrong secrets and dead keys are worth an audit record (someone holds a key they should not use);
  // malformed and unknown ids are not attributable and would only let garbage flood the log. The caller
  // is anonymous, the key only the target: key ids are not secret, and a stranger spraying one from many
  // addresses must not make the key look misused (and get it revoked by an automatic response).
  const auditRefusal = (verdict: Extract<KeyVerdict, { ok: false }>, client: ClientInfo) => {
    if (verdict.keyId === undefined) return;
    deps.audit.record({
      type: "api_key.authenticate",
      outcome: "denied",
      ...auditedCaller({ client }),
      target: { kind: "api_key", id: verdict.keyId },
      reason: verdict.rejection,
    });
  };

  return {
    async authenticate(credential, client) {
      const verdict = await deps.verifier.verify(credential.value, client.ip);
      if (!verdict.ok) {
        auditRefusal(verdict, client);
        throw keyRejectionError(verdict.rejection);
      }
      const principal = principalOf(verdict, "api_key", undefined);
      if (deps.usage.noteUse(principal.id, client.ip)) {
        deps.audit.record({
          type: "api_key.new_ip",
          outcome: "success",
          ...auditedCaller({ principal, client }),
          target: { kind: "user", id: principal.userId },
          reason: "first use of this key from this address seen by this instance",
        });
      }
      return principal;
    },

    async exchangedTokenPrincipal({ keyId, claimedPermissions, clientIp }) {
      // The key's network restriction follows it into the tokens it was exchanged for.
      const verdict = await deps.verifier.evaluate(keyId, clientIp);
      if (!verdict.ok) throw keyRejectionError(verdict.rejection === "unknown" ? "revoked" : verdict.rejection);
      // No session: the key is the credential, and revoking the key is how the token dies.
      return principalOf(verdict, "exchanged_api_key", undefined, new Set(claimedPermissions));
    },

    watch(principal, onChange) {
      const keyId = principal.id;
      const reevaluate = () => {
        deps.verifier.evaluate(keyId).then(
          (verdict) => onChange(verdict.ok ? principalOf(verdict, principal.method, principal.sessionId, principal.permissions) : undefined),
          () => undefined, // a failed lookup changes nothing; the next change retries
        );
      };
      const stopKeys = deps.cache.subscribe((changed) => {
        if (changed === keyId) reevaluate();
      });
      const stopUsers = deps.revocations.subscribe((change) => {
        if (change.kind === "user" && change.userId === principal.userId) reevaluate();
      });
      return () => {
        stopKeys();
        stopUsers();
      };
    },
  };
}
