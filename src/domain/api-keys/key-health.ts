import { ROLE_PERMISSIONS } from "../permissions.ts";
import type { RequestContext } from "../request-context.ts";
import type { KeyViews, OwnerSelection } from "./key-views.ts";
import type { UserState } from "../revocation/revocation-cache.ts";
import type { UserStateReader } from "../revocation/user-state.ts";

/** One piece of advice about one key. */
export interface HealthFinding {
  readonly kind: "older_than_90_days" | "unused_30_days" | "no_expiry" | "admin_scopes_long_lived" | "owner_disabled";
  readonly keyId: string;
  readonly keyName: string;
  readonly ownerUserId: string;
  readonly severity: "low" | "medium" | "high";
  readonly advice: string;
}

export interface ApiKeyHealth {
  /**
   * GetApiKeyHealth: advice on the keys that still work (active, or rotated within grace), most severe
   * first. The caller's keys, another user's or everyone's (the latter two need `users.manage`).
   */
  health(ctx: RequestContext, selection: OwnerSelection): Promise<{ findings: HealthFinding[]; checked: number }>;
}

const DAY_MS = 86_400_000;
// Permissions a plain user does not have: a key carrying one is an administrative credential.
const ADMIN_ONLY = new Set([...ROLE_PERMISSIONS.owner].filter((p) => !ROLE_PERMISSIONS.user.has(p)));
const SEVERITY_ORDER = { high: 0, medium: 1, low: 2 } as const;

export function createApiKeyHealth(deps: {
  views: KeyViews;
  /** The current state of a user (role, disabled). */
  userState: UserStateReader;
  now: () => Date;
}): ApiKeyHealth {
  const { now } = deps;
  return {
    async health(ctx, selection) {
      const { keys: seen } = await deps.views.selected(ctx, selection, "key health", "api_key.health");
      const at = now().getTime();
      // Keys that still work (active, or rotated within grace) are the ones worth advice.
      const live = seen.filter((k) => k.status === "active" || (k.status === "rotated" && (k.graceExpiresAt?.getTime() ?? 0) > at));
      const findings: HealthFinding[] = [];
      const ownerStates = new Map<string, UserState | undefined>();
      for (const key of live) {
        const base = { keyId: key.id, keyName: key.name, ownerUserId: key.ownerUserId };
        if (!ownerStates.has(key.ownerUserId)) ownerStates.set(key.ownerUserId, await deps.userState(key.ownerUserId));
        const owner = ownerStates.get(key.ownerUserId);
        if (!owner || owner.disabled) findings.push({ ...base, kind: "owner_disabled", severity: "high", advice: "The key's owner is disabled, so the key no longer works: revoke it." });
        const lifetimeMs = key.expiresAt ? key.expiresAt.getTime() - key.createdAt.getTime() : Infinity;
        if (key.scopes.some((s) => ADMIN_ONLY.has(s as never)) && lifetimeMs > 30 * DAY_MS) {
          findings.push({
            ...base,
            kind: "admin_scopes_long_lived",
            severity: "high",
            advice: "The key carries administrative scopes for more than 30 days: narrow its scopes or rotate it to a shorter-lived key.",
          });
        }
        if (!key.expiresAt) findings.push({ ...base, kind: "no_expiry", severity: "medium", advice: "The key never expires: replace it with a key that does." });
        if (at - key.createdAt.getTime() > 90 * DAY_MS) findings.push({ ...base, kind: "older_than_90_days", severity: "medium", advice: "The key is older than 90 days: rotate it." });
        const lastActivity = key.usage.lastUsedAt?.getTime() ?? key.createdAt.getTime();
        if (at - lastActivity > 30 * DAY_MS) {
          findings.push({ ...base, kind: "unused_30_days", severity: "low", advice: "The key has not been used for 30 days: revoke it if nothing needs it." });
        }
      }
      findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.keyId.localeCompare(b.keyId));
      return { findings, checked: live.length };
    },
  };
}
