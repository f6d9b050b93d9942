import { chainHash, type HashableAuditEvent } from "./audit-chain.ts";

/** How a chain was found broken; mirrors portcullis.v1.ChainBreakReason. */
export type ChainBreakReason = "modified" | "deleted" | "inserted" | "reordered" | "head_mismatch";

/** The first break found: the sequence where the chain stops being trustworthy, and why. */
export interface ChainBreak {
  readonly seq: number;
  readonly reason: ChainBreakReason;
  readonly detail: string;
}

/** One chained event as read back (from the database or from an export line). */
export interface ChainEntry {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly event: HashableAuditEvent;
  /** The gateway's seal, where the database holds it (exports do not carry it). */
  readonly seal?: string | undefined;
}

export interface ChainCheckOptions {
  /**
   * Where the checked range starts: the first expected seq, the hash it must link to, and the time it
   * must not precede (the previous event's; unknown after a retention checkpoint or at genesis).
   */
  readonly anchor: { readonly nextSeq: number; readonly prevHash: string; readonly prevTime?: string | undefined };
  /** The seq of the entry holding `hash`, if any (to tell a reordering from an insertion). */
  readonly findSeqByHash: (hash: string) => Promise<number | undefined>;
  /** Whether the entry carries the gateway's seal; omitted offline, where the seal key is unknown. */
  readonly sealed?: (entry: ChainEntry) => boolean;
}

/**
 * Checks entries fed in ascending sequence order, one at a time, and reports the first break:
 *
 * 1. a missing sequence number → `deleted` (at the missing seq);
 * 2. a sequence at or below the previous one → `reordered`;
 * 3. content that does not hash to the stored hash → `modified`;
 * 4. a `prevHash` that is not the previous entry's hash → `reordered` when it is the hash of another
 *    entry of the log (events were moved), else `inserted`;
 * 5. a `time` before the previous entry's → `reordered` (the gateway never chains an event before an
 *    earlier one: see `chainRecords`);
 * 6. a valid, linked hash without the gateway's seal (server-side only) → `inserted` (written or
 *    rewritten outside the gateway, hashes recomputed).
 */
export function createChainCheck(options: ChainCheckOptions) {
  let expected = options.anchor.nextSeq;
  let previousHash = options.anchor.prevHash;
  let previousTime = options.anchor.prevTime === undefined ? undefined : Date.parse(options.anchor.prevTime);
  let checked = 0;
  return {
    /** The number of entries found intact so far. */
    get checked() {
      return checked;
    },
    /** The hash of the last intact entry (or the anchor's). */
    get lastHash() {
      return previousHash;
    },
    /** The seq the next entry must have. */
    get expectedSeq() {
      return expected;
    },
    async push(entry: ChainEntry): Promise<ChainBreak | undefined> {
      if (entry.seq > expected) {
        const missing = entry.seq - expected;
        return { seq: expected, reason: "deleted", detail: `event ${expected}${missing > 1 ? ` to ${entry.seq - 1}` : ""} is missing` };
      }
      if (entry.seq < expected) return { seq: entry.seq, reason: "reordered", detail: `event ${entry.seq} appears after event ${expected - 1}` };
      if (chainHash(entry.prevHash, entry.event) !== entry.hash) {
        return { seq: entry.seq, reason: "modified", detail: `the content of event ${entry.seq} does not match its hash` };
      }
      if (entry.prevHash !== previousHash) {
        const other = await options.findSeqByHash(entry.prevHash);
        if (other !== undefined && other !== entry.seq - 1) {
          return { seq: entry.seq, reason: "reordered", detail: `event ${entry.seq} follows event ${other} in the chain but is stored at position ${entry.seq}` };
        }
        return { seq: entry.seq, reason: "inserted", detail: `event ${entry.seq} does not link to the hash of event ${entry.seq - 1}` };
      }
      const time = Date.parse(entry.event.time);
      if (previousTime !== undefined && time < previousTime) {
        return { seq: entry.seq, reason: "reordered", detail: `event ${entry.seq} is dated before event ${entry.seq - 1}` };
      }
      if (options.sealed && !options.sealed(entry)) {
        return { seq: entry.seq, reason: "inserted", detail: `event ${entry.seq} was not written by the gateway (no valid seal)` };
      }
      previousHash = entry.hash;
      previousTime = time;
      expected = entry.seq + 1;
      checked += 1;
      return undefined;
    },
  };
}
