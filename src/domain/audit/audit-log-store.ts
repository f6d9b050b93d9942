import type { SealedAuditRecord } from "./audit-chain.ts";
import type { AuditStore } from "./audit-event.ts";
import type { AuditFilter } from "./audit-filter.ts";

/** What the audit log reads and sweeps; implemented by `src/store/audit-store.ts`. */
export interface AuditLogStore extends AuditStore {
  /** The newest chained event's seq and hash, read from the database; undefined for an empty log. */
  head(): Promise<{ seq: number; hash: string } | undefined>;
  /** The lowest stored seq; undefined for an empty log. */
  firstSeq(): Promise<number | undefined>;
  /** Events with `fromSeq <= seq <= toSeq`, ascending, at most `limit`. */
  range(fromSeq: number, toSeq: number, limit: number): Promise<SealedAuditRecord[]>;
  get(seq: number): Promise<SealedAuditRecord | undefined>;
  /** Up to `limit` events right after `afterSeq`, by indexed lookups (cheap near the head, for the live tail). */
  next(afterSeq: number, limit: number): Promise<SealedAuditRecord[]>;
  findSeqByHash(hash: string): Promise<number | undefined>;
  query(filter: AuditFilter, options: { order: "asc" | "desc"; cursorSeq?: number | undefined; limit: number }): Promise<SealedAuditRecord[]>;
  scan(filter: AuditFilter, limit: number): Promise<SealedAuditRecord[]>;
  deleteThrough(seq: number): Promise<number>;
}

/** A signed position of the chain: a head signature or a retention checkpoint. */
export interface SignedChainPoint {
  readonly seq: number;
  readonly hash: string;
  /** Compact JWS over `{ seq, hash }` by the server's signing key. */
  readonly jws: string;
  readonly at: Date;
}

/** Signed heads and retention checkpoints; implemented by `src/store/audit-seals-store.ts`. */
export interface AuditSealsStore {
  saveHead(point: SignedChainPoint): Promise<void>;
  latestHead(): Promise<SignedChainPoint | undefined>;
  saveCheckpoint(point: SignedChainPoint): Promise<void>;
  latestCheckpoint(): Promise<SignedChainPoint | undefined>;
}
