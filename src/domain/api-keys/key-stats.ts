import type { AiUsageReader } from "./api-key-record.ts";
import type { RequestContext } from "../request-context.ts";
import type { KeyViews, OwnerSelection } from "./key-views.ts";

/** GetApiKeyStats: counts by status and usage over the keys in view. */
export interface ApiKeyStatistics {
  readonly total: number;
  readonly active: number;
  readonly rotated: number;
  readonly revoked: number;
  readonly expired: number;
  /** Calls made with the keys, over every instance. */
  readonly usage: number;
  /** Active keys used in the last 30 days. */
  readonly usedRecently: number;
  /** Active keys that expire within 7 days. */
  readonly expiringSoon: number;
  readonly lastUsedAt: Date | undefined;
  /** AI use by the users in view (their sessions and keys). */
  readonly ai: { readonly queries: number; readonly inputTokens: number; readonly outputTokens: number; readonly latencyMs: number };
}

export interface ApiKeyStats {
  /** The caller's keys, another user's or everyone's (the latter two need `users.manage`, and are audited). */
  stats(ctx: RequestContext, selection: OwnerSelection): Promise<ApiKeyStatistics>;
}

const DAY_MS = 86_400_000;

export function createApiKeyStats(deps: { views: KeyViews; aiUsage?: AiUsageReader | undefined; now: () => Date }): ApiKeyStats {
  const { now } = deps;
  return {
    async stats(ctx, selection) {
      const { scope, keys: seen } = await deps.views.selected(ctx, selection, "key statistics", "api_key.stats");
      const at = now().getTime();
      const counts = { active: 0, rotated: 0, revoked: 0, expired: 0 };
      let usage = 0;
      let usedRecently = 0;
      let expiringSoon = 0;
      let lastUsedAt: Date | undefined;
      for (const key of seen) {
        counts[key.status]++;
        usage += key.usage.count;
        if (key.usage.lastUsedAt && (!lastUsedAt || key.usage.lastUsedAt > lastUsedAt)) lastUsedAt = key.usage.lastUsedAt;
        if (key.status !== "active") continue;
        if (key.usage.lastUsedAt && at - key.usage.lastUsedAt.getTime() <= 30 * DAY_MS) usedRecently++;
        if (key.expiresAt && key.expiresAt.getTime() - at <= 7 * DAY_MS) expiringSoon++;
      }
      const ai = (await deps.aiUsage?.userUsage(scope)) ?? { queries: 0, inputTokens: 0, outputTokens: 0, latencyMs: 0 };
      return { total: seen.length, ...counts, usage, usedRecently, expiringSoon, lastUsedAt, ai };
    },
  };
}
