import type { Collection } from "mongodb";
import { addCounters, type AiUsageStore, type UsageCounters } from "../domain/ai/usage-ledger.ts";
import type { Store } from "./mongo-store.ts";

interface UsageDocument extends UsageCounters {
  _id: string;
  subject: string;
  updatedAt: Date;
}

// Sorts after every character an id or instance id uses: the end of a subject's `_id` range.
const RANGE_END = "\uffff";

/**
 * `ai_usage`: one document per subject and instance (`<subject>|<instanceId>`), replaced with absolute
 * totals only by its instance. A subject's documents form one `_id` range, which is what a budget check
 * reads — an `_id` lookup even where secondary indexes do not help.
 */
export function createAiUsageStore(store: Store): AiUsageStore {
  const usage: Collection<UsageDocument> = store.db.collection<UsageDocument>("ai_usage");
  const sum = (docs: UsageDocument[], exceptInstance: string) => {
    const out = new Map<string, UsageCounters>();
    const skip = `|${exceptInstance}`;
    for (const doc of docs) {
      if (doc._id.endsWith(skip)) continue;
      out.set(doc.subject, addCounters(out.get(doc.subject), { queries: doc.queries, inputTokens: doc.inputTokens, outputTokens: doc.outputTokens, latencyMs: doc.latencyMs }));
    }
    return out;
  };
  return {
    async save(instanceId, counters, now) {
      if (counters.size === 0) return;
      await usage.bulkWrite(
        [...counters].map(([subject, c]) => ({
          replaceOne: {
            filter: { _id: `${subject}|${instanceId}` },
            replacement: { subject, queries: c.queries, inputTokens: c.inputTokens, outputTokens: c.outputTokens, latencyMs: c.latencyMs, updatedAt: now },
            upsert: true,
          },
        })),
        { ordered: false },
      );
    },
    async totals(subjects, { exceptInstance }) {
      if (subjects.length === 0) return new Map();
      const ranges = subjects.map((s) => ({ _id: { $gte: `${s}|`, $lt: `${s}|${RANGE_END}` } }));
      const docs = await usage.find(ranges.length === 1 ? ranges[0]! : { $or: ranges }).toArray();
      return sum(docs, exceptInstance);
    },
    async totalsWithPrefix(prefix, { exceptInstance }) {
      return sum(await usage.find({ _id: { $gte: prefix, $lt: `${prefix}${RANGE_END}` } }).toArray(), exceptInstance);
    },
  };
}
