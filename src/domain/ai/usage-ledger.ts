import { randomUUID } from "node:crypto";
import { createWriteBehind } from "../write-behind.ts";

/** What was counted for one subject (a key, a user, or a key's spend in one budget period). */
export interface UsageCounters {
  queries: number;
  inputTokens: number;
  outputTokens: number;
  /** The provider's time, summed over the queries. */
  latencyMs: number;
}

/**
 * Where the ledger keeps its counters; implemented by `src/store/ai-usage-store.ts`. Each instance owns
 * one document per subject (`<subject>|<instanceId>`) and writes absolute values into it: no two
 * instances ever write the same document, so nothing depends on atomic increments or conditional
 * updates (FerretDB 1.x has neither), and a repeated write after a failure is harmless.
 */
export interface AiUsageStore {
  save(instanceId: string, counters: ReadonlyMap<string, UsageCounters>, now: Date): Promise<void>;
  /** Per subject, the sum over every instance's document except `exceptInstance`'s. */
  totals(subjects: readonly string[], options: { exceptInstance: string }): Promise<Map<string, UsageCounters>>;
  /** Every subject starting with `prefix`, summed the same way (for "all users" statistics). */
  totalsWithPrefix(prefix: string, options: { exceptInstance: string }): Promise<Map<string, UsageCounters>>;
}

/** One finished (or cancelled, or failed part-way) query's cost. */
export interface QueryCost {
  readonly userId: string;
  /** The API key that made the query; undefined for a user's session. */
  readonly keyId?: string | undefined;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly latencyMs: number;
  readonly at: Date;
}

/** Subject names: `key:<id>`, `user:<id>`, and a key's spend per UTC day and month. */
export const usageSubject = {
  key: (keyId: string) => `key:${keyId}`,
  user: (userId: string) => `user:${userId}`,
  day: (keyId: string, at: Date) => `spend:${keyId}:d:${at.toISOString().slice(0, 10)}`,
  month: (keyId: string, at: Date) => `spend:${keyId}:m:${at.toISOString().slice(0, 7)}`,
};

/**
 * Counts the tokens, queries and provider latency of AI queries per key, per user, and per key and
 * budget period. A query's cost is in memory at once; reads add this instance's memory to the other
 * instances' stored documents.
 */
export interface UsageLedger {
  readonly instanceId: string;
  /**
   * Counts one query. `durable`: written to the database before this resolves, so the next budget check
   * on any instance sees it (budgeted keys). Otherwise written within `lazyWriteMs`, together with
   * whatever else was counted meanwhile: one write per interval under load instead of one per query.
   */
  record(cost: QueryCost, options?: { durable?: boolean }): Promise<void>;
  /** Summed over every instance, this one's unwritten counts included. */
  totals(subjects: readonly string[]): Promise<Map<string, UsageCounters>>;
  totalsWithPrefix(prefix: string): Promise<Map<string, UsageCounters>>;
  /** Writes what is not written yet; on a timer, and on stop. */
  flush(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

const EMPTY: UsageCounters = Object.freeze({ queries: 0, inputTokens: 0, outputTokens: 0, latencyMs: 0 });

export function addCounters(a: UsageCounters | undefined, b: UsageCounters): UsageCounters {
  if (!a) return { ...b };
  return { queries: a.queries + b.queries, inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens, latencyMs: a.latencyMs + b.latencyMs };
}

export function createUsageLedger(options: { store: AiUsageStore; flushIntervalMs?: number; lazyWriteMs?: number; onError?: (error: unknown) => void }): UsageLedger {
  const instanceId = randomUUID();
  const counters = new Map<string, UsageCounters>();
  let timer: NodeJS.Timeout | undefined;
  let lazy: NodeJS.Timeout | undefined;
  const onError = options.onError ?? (() => undefined);

  // Concurrent queries share one write; written period counts are forgotten (below).
  const writer = createWriteBehind({
    current: (subject) => counters.get(subject),
    save: (snapshot) => options.store.save(instanceId, snapshot, new Date()),
    afterWrite: (written) => forgetPastPeriods(written),
  });
  const flush = writer.flush;

  const add = (subject: string, delta: UsageCounters) => {
    counters.set(subject, addCounters(counters.get(subject), delta));
    writer.markChanged(subject);
  };

  // A budget period's count is no longer added to once the period is over: once written, it is kept
  // only in the database, so a long-running instance does not hold every key's every day in memory.
  // (Periods are forgotten a day late, so a clock stepping back over midnight cannot restart a count.)
  const forgetPastPeriods = (written: Iterable<string>) => {
    const now = Date.now();
    const oldestDay = new Date(now - 86_400_000).toISOString().slice(0, 10);
    const lastMonth = new Date(now);
    lastMonth.setUTCDate(1);
    lastMonth.setUTCMonth(lastMonth.getUTCMonth() - 1);
    const oldestMonth = lastMonth.toISOString().slice(0, 7);
    for (const subject of written) {
      if (writer.isPending(subject)) continue;
      const period = /:([dm]):([\d-]+)$/.exec(subject);
      if (period && period[2]! < (period[1] === "d" ? oldestDay : oldestMonth)) counters.delete(subject);
    }
  };

  const withMine = (theirs: Map<string, UsageCounters>, subjects: Iterable<string>) => {
    for (const subject of subjects) {
      const mine = counters.get(subject);
      if (mine) theirs.set(subject, addCounters(theirs.get(subject), mine));
    }
    return theirs;
  };

  return {
    instanceId,
    async record(cost, recordOptions) {
      const tokens = { queries: 1, inputTokens: cost.inputTokens, outputTokens: cost.outputTokens, latencyMs: cost.latencyMs };
      add(usageSubject.user(cost.userId), tokens);
      if (cost.keyId !== undefined) {
        add(usageSubject.key(cost.keyId), tokens);
        add(usageSubject.day(cost.keyId, cost.at), tokens);
        add(usageSubject.month(cost.keyId, cost.at), tokens);
      }
      if (recordOptions?.durable) {
        await flush().catch(onError);
      } else if (!lazy) {
        lazy = setTimeout(() => {
          lazy = undefined;
          flush().catch(onError);
        }, options.lazyWriteMs ?? 200);
        lazy.unref();
      }
    },
    async totals(subjects) {
      return withMine(await options.store.totals(subjects, { exceptInstance: instanceId }), subjects);
    },
    async totalsWithPrefix(prefix) {
      const theirs = await options.store.totalsWithPrefix(prefix, { exceptInstance: instanceId });
      return withMine(
        theirs,
        [...counters.keys()].filter((s) => s.startsWith(prefix)),
      );
    },
    flush,
    start() {
      timer ??= setInterval(() => void flush().catch(onError), options.flushIntervalMs ?? 5_000).unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      if (lazy) clearTimeout(lazy);
      timer = undefined;
      lazy = undefined;
      await flush();
    },
  };
}

export function countersOr(value: UsageCounters | undefined): UsageCounters {
  return value ?? EMPTY;
}
