import { randomUUID } from "node:crypto";
import { createWriteBehind } from "../write-behind.ts";

export interface UsageTotals {
  count: number;
  lastUsedAt: Date;
  lastUsedIp: string;
}

/** Where totals go; implemented by `src/store/api-keys-store.ts` (`saveUsage`). */
export interface UsageSink {
  saveUsage(instanceId: string, totals: ReadonlyMap<string, UsageTotals>, now: Date): Promise<void>;
}

/**
 * Counts key use in memory and writes it every few seconds — never a database write per request. Each
 * process keeps running totals under its own instance id and writes them as absolute values, so a failed
 * write is simply repeated by the next flush, and two instances never write the same document.
 */
export interface UsageTracker {
  /** This process's id in the stored usage documents. */
  readonly instanceId: string;
  /** This process's running totals for `keyId` (written or not yet); undefined if it never saw the key. */
  current(keyId: string): UsageTotals | undefined;
  /** Notes one successful use. Returns true the first time this process sees the key from `ip`. */
  noteUse(keyId: string, ip: string): boolean;
  /** Writes every total that changed since the last write. Called on a timer and on graceful stop. */
  flush(): Promise<void>;
  start(): void;
  /** Stops the timer and writes what is left. */
  stop(): Promise<void>;
}

// Per key, the client addresses this process has seen, bounded so a key used from everywhere costs little.
const MAX_IPS_PER_KEY = 64;

export function createUsageTracker(options: { sink: UsageSink; flushIntervalMs?: number; now?: () => Date; onError?: (err: unknown) => void }): UsageTracker {
  const now = options.now ?? (() => new Date());
  const flushIntervalMs = options.flushIntervalMs ?? 5_000;
  const onError = options.onError ?? ((err: unknown) => console.error("api key usage:", err));
  const instanceId = randomUUID();
  const totals = new Map<string, UsageTotals>();
  const seenIps = new Map<string, Set<string>>();
  let timer: NodeJS.Timeout | undefined;

  const writer = createWriteBehind({ current: (keyId) => totals.get(keyId), save: (snapshot) => options.sink.saveUsage(instanceId, snapshot, now()) });
  const flush = writer.flush;

  return {
    instanceId,
    current(keyId) {
      const total = totals.get(keyId);
      return total && { ...total };
    },
    noteUse(keyId, ip) {
      const at = now();
      const total = totals.get(keyId);
      if (total) {
        total.count++;
        total.lastUsedAt = at;
        total.lastUsedIp = ip;
      } else {
        totals.set(keyId, { count: 1, lastUsedAt: at, lastUsedIp: ip });
      }
      writer.markChanged(keyId);
      let ips = seenIps.get(keyId);
      if (!ips) {
        ips = new Set();
        seenIps.set(keyId, ips);
      }
      if (ips.has(ip) || ips.size >= MAX_IPS_PER_KEY) return false;
      ips.add(ip);
      return true;
    },
    flush,
    start() {
      if (timer) return;
      timer = setInterval(() => {
        flush().catch(onError);
      }, flushIntervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await flush();
    },
  };
}
