import type { AiUsageReader, ApiKeyAiUsage } from "../api-keys/api-key-record.ts";
import { countersOr, usageSubject, type UsageLedger } from "./usage-ledger.ts";

/**
 * The API keys' view of AI use (GetApiKey, GetApiKeyStats): per key, its totals and what it spent in the
 * current budget periods; per user (or everyone), the sum over their queries. Read from the usage
 * ledger, which merges every instance's counts.
 */
export function createAiUsageReader(ledger: UsageLedger): AiUsageReader {
  return {
    async keyUsage(keyIds, at) {
      const subjects = keyIds.flatMap((id) => [usageSubject.key(id), usageSubject.day(id, at), usageSubject.month(id, at)]);
      const totals = await ledger.totals(subjects);
      const out = new Map<string, ApiKeyAiUsage>();
      for (const id of keyIds) {
        const all = totals.get(usageSubject.key(id));
        if (!all) continue;
        const day = countersOr(totals.get(usageSubject.day(id, at)));
        const month = countersOr(totals.get(usageSubject.month(id, at)));
        out.set(id, {
          queries: all.queries,
          inputTokens: all.inputTokens,
          outputTokens: all.outputTokens,
          latencyMs: all.latencyMs,
          spentToday: day.inputTokens + day.outputTokens,
          spentThisMonth: month.inputTokens + month.outputTokens,
        });
      }
      return out;
    },
    async userUsage(scope) {
      const totals = "all" in scope ? await ledger.totalsWithPrefix(usageSubject.user("")) : await ledger.totals([usageSubject.user(scope.ownerUserId)]);
      const sum = { queries: 0, inputTokens: 0, outputTokens: 0, latencyMs: 0 };
      for (const c of totals.values()) {
        sum.queries += c.queries;
        sum.inputTokens += c.inputTokens;
        sum.outputTokens += c.outputTokens;
        sum.latencyMs += c.latencyMs;
      }
      return sum;
    },
  };
}
