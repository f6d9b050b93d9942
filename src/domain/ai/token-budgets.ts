import { DomainError } from "../errors.ts";
import { usageSubject, type UsageLedger } from "./usage-ledger.ts";

/** A key's token budgets (input plus output tokens); an absent field is no limit. */
export interface TokenBudget {
  readonly perDay?: number | undefined;
  readonly perMonth?: number | undefined;
}

/** Where budgets come from: the API-key cache, which follows UpdateApiKey on every instance within a second. */
export type BudgetLookup = (keyId: string) => Promise<TokenBudget | undefined>;

/** A query let through; `release` must be called once it has ended and its cost is recorded. */
export interface BudgetAdmission {
  /** Whether the key has a budget: its query's cost must be written before the answer completes. */
  readonly limited: boolean;
  release(): void;
}

/**
 * Admits AI queries of API keys against their daily and monthly token budgets.
 *
 * How the spend stays exact across instances without transactions: each instance counts spend per key
 * and UTC period in its own document (see UsageLedger), writes it before a query's answer completes,
 * and every admission reads the sum of all instances' documents. No write ever races another, so the
 * stored spend is exact. What an admission cannot see is a query still running elsewhere; to bound
 * that to one query per instance, an instance admits a key's query alongside its own running ones only
 * while all of them together fit in what is left (each reserves its input estimate plus max_tokens);
 * otherwise it waits for them to end and looks again. So the spend can pass a budget by at most the
 * query each instance let start last, and a query that would start once the budget is spent is refused.
 */
export interface TokenBudgets {
  /**
   * Resolves when the key may start a query reserving `reserveTokens`, or rejects with
   * RESOURCE_EXHAUSTED (reason BUDGET_EXCEEDED, retry after = time to the reset) when a budget is spent.
   * Keys without a budget pass at once without a database read.
   */
  admit(keyId: string, reserveTokens: number, signal: AbortSignal): Promise<BudgetAdmission>;
}

interface Gate {
  /** Admissions still deciding (reading the spend or waiting); the gate is kept while any is. */
  deciding: number;
  running: number;
  reserved: number;
  waiters: Array<() => void>;
}

const NO_GATE: BudgetAdmission = { limited: false, release() {} };

export function createTokenBudgets(deps: { ledger: UsageLedger; budgetOf: BudgetLookup; now?: () => Date }): TokenBudgets {
  const now = deps.now ?? (() => new Date());
  const gates = new Map<string, Gate>();

  const wake = (gate: Gate) => {
    const waiters = gate.waiters;
    gate.waiters = [];
    for (const resolve of waiters) resolve();
  };

  const waitForRelease = (gate: Gate, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener("abort", onAbort, { once: true });
      gate.waiters.push(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });

  return {
    async admit(keyId, reserveTokens, signal) {
      const budget = await deps.budgetOf(keyId);
      if (!budget || (budget.perDay === undefined && budget.perMonth === undefined)) return NO_GATE;
      let gate = gates.get(keyId);
      if (!gate) {
        gate = { deciding: 0, running: 0, reserved: 0, waiters: [] };
        gates.set(keyId, gate);
      }
      gate.deciding++;
      try {
        await decide(keyId, budget, gate, reserveTokens, signal);
      } finally {
        gate.deciding--;
        forget(keyId, gate);
      }
      let released = false;
      const held = gate;
      return {
        limited: true,
        release() {
          if (released) return;
          released = true;
          held.running--;
          held.reserved -= reserveTokens;
          wake(held);
          forget(keyId, held);
        },
      };
    },
  };

  function forget(keyId: string, gate: Gate) {
    if (gate.running === 0 && gate.deciding === 0 && gates.get(keyId) === gate) gates.delete(keyId);
  }

  async function decide(keyId: string, budget: TokenBudget, gate: Gate, reserveTokens: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const at = now();
      const day = usageSubject.day(keyId, at);
      const month = usageSubject.month(keyId, at);
      const totals = await deps.ledger.totals([day, month]);
      const spentDay = spent(totals.get(day));
      const spentMonth = spent(totals.get(month));
      if (budget.perDay !== undefined && spentDay >= budget.perDay) throw exhausted("daily", budget.perDay, nextDay(at), at);
      if (budget.perMonth !== undefined && spentMonth >= budget.perMonth) throw exhausted("monthly", budget.perMonth, nextMonth(at), at);
      const fits = (limit: number | undefined, used: number) => limit === undefined || used + gate.reserved + reserveTokens <= limit;
      if (gate.running === 0 || (fits(budget.perDay, spentDay) && fits(budget.perMonth, spentMonth))) {
        // Taken in the same turn as the check, so no other admission sees the gate without it.
        gate.running++;
        gate.reserved += reserveTokens;
        return;
      }
      await waitForRelease(gate, signal);
    }
  }
}

function spent(counters: { inputTokens: number; outputTokens: number } | undefined): number {
  return counters ? counters.inputTokens + counters.outputTokens : 0;
}

function exhausted(period: "daily" | "monthly", limit: number, resetsAt: Date, at: Date): DomainError {
  return new DomainError("resource_exhausted", `the API key's ${period} token budget (${limit}) is spent; it resets at ${resetsAt.toISOString()}`, {
    reason: "budget_exceeded",
    retryAfterMs: Math.max(1, resetsAt.getTime() - at.getTime()),
  });
}

function nextDay(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1));
}

function nextMonth(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
}
