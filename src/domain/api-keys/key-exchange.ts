import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import { apiKeyAuditActor } from "../audit/audit-actor.ts";
import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { keyRejectionError } from "../auth/api-key-authenticator.ts";
import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";
import type { CallOrigin } from "../request-context.ts";
import type { AccessTokenService } from "../tokens/access-tokens.ts";
import type { ApiKeyVerifier } from "./api-key-verifier.ts";
import type { KeyViews, ApiKeyView } from "./key-views.ts";
import type { UsageTracker } from "./usage-tracker.ts";

/** Presenting a key to another party than the gateway's interceptors: VerifyApiKey and ExchangeApiKey. */
export interface ApiKeyExchange {
  /** For services that accept our keys: never an error for a bad key, and not counted as use. */
  verify(value: string, clientIp: string): Promise<{ valid: false } | { valid: true; key: ApiKeyView; permissions: readonly string[] }>;
  /**
   * ExchangeApiKey: a valid key for a short-lived access token carrying (some of) its scopes. The caller
   * is usually anonymous; one who is signed in (`origin.principal`) may exchange only their own keys,
   * so that no signed-in caller is handed a token acting as somebody else.
   */
  exchange(
    origin: CallOrigin & { readonly principal?: Principal | undefined },
    input: { apiKey: string; scopes: readonly string[]; ttlMs?: number },
  ): Promise<{ token: string; expiresAt: Date; scopes: string[]; keyId: string }>;
}

export function createApiKeyExchange(deps: {
  verifier: ApiKeyVerifier;
  views: KeyViews;
  usage: UsageTracker;
  audit: AuditRecorder;
  accessTokens: AccessTokenService;
  /** The longest an exchanged token may live: the access-token TTL. */
  accessTokenTtlMs: number;
  now: () => Date;
}): ApiKeyExchange {
  const { now } = deps;
  return {
    async verify(value, clientIp) {
      if (value.length === 0) throw new DomainError("invalid_argument", "api_key is required");
      if (clientIp !== "" && isIP(clientIp) === 0) throw new DomainError("invalid_argument", "client_ip is not an IP address");
      if (value.length > 1024) return { valid: false };
      const verdict = await deps.verifier.verify(value, clientIp === "" ? undefined : clientIp);
      if (!verdict.ok) return { valid: false };
      return { valid: true, key: deps.views.view(verdict.key.state, undefined), permissions: [...verdict.key.permissions].sort() };
    },

    async exchange(origin, input) {
      const { client, requestId } = origin;
      if (input.apiKey.length === 0) throw new DomainError("invalid_argument", "api_key is required");
      if (input.ttlMs !== undefined && (!Number.isFinite(input.ttlMs) || input.ttlMs <= 0)) throw new DomainError("invalid_argument", "ttl must be positive");
      const verdict = input.apiKey.length > 1024 ? ({ ok: false, rejection: "malformed" } as const) : await deps.verifier.verify(input.apiKey, client.ip);
      if (!verdict.ok) {
        if (verdict.keyId) {
          deps.audit.record({ type: "api_key.exchange", outcome: "denied", ...auditedCaller({ client, requestId }), target: { kind: "api_key", id: verdict.keyId }, reason: verdict.rejection });
        }
        // The contract: a disabled owner or a foreign network is a refusal of a known key, not an unknown one.
        if (verdict.rejection === "owner_disabled") throw new DomainError("permission_denied", "the key's owner is disabled");
        throw keyRejectionError(verdict.rejection);
      }
      const { state, permissions, ownerRole } = verdict.key;
      if (origin.principal && origin.principal.userId !== state.record.ownerUserId) {
        deps.views.refuse({ principal: origin.principal, client, requestId }, "api_key.exchange", state.record._id, "a signed-in caller may exchange only their own keys");
      }
      const requested = input.scopes.length > 0 ? [...new Set(input.scopes)] : [...permissions];
      const outside = requested.filter((s) => !permissions.has(s));
      if (outside.length > 0) throw new DomainError("permission_denied", "a requested scope is not granted by this key");
      // The token lives no longer than asked, than the key, or than an access token.
      const atMs = now().getTime();
      let ttlMs = input.ttlMs ?? Number.POSITIVE_INFINITY;
      if (state.record.expiresAt) ttlMs = Math.min(ttlMs, state.record.expiresAt.getTime() - atMs);
      if (state.rotation) ttlMs = Math.min(ttlMs, state.rotation.graceExpiresAt.getTime() - atMs);
      const issued = await deps.accessTokens.issue({
        userId: state.record.ownerUserId,
        sessionId: randomUUID(),
        role: ownerRole,
        permissions: requested.sort(),
        amr: "api_key",
        keyId: state.record._id,
        ...(Number.isFinite(ttlMs) ? { ttlMs: Math.max(1_000, Math.min(ttlMs, deps.accessTokenTtlMs)) } : {}),
      });
      deps.usage.noteUse(state.record._id, client.ip);
      deps.audit.record({
        type: "api_key.exchange",
        outcome: "success",
        ...auditedCaller({ client, requestId }),
        actor: apiKeyAuditActor({ id: state.record._id, name: state.record.name, ownerUserId: state.record.ownerUserId }),
        target: { kind: "user", id: state.record.ownerUserId },
        metadata: { scopes: requested.join(" "), expires: issued.expiresAt.toISOString() },
      });
      return { token: issued.token, expiresAt: issued.expiresAt, scopes: requested, keyId: state.record._id };
    },
  };
}
