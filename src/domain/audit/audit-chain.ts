import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { hmacKeyOf } from "../crypto/hmac-key.ts";
import type { AuditActor, AuditOutcome, AuditRecord } from "./audit-event.ts";

/** The `prevHash` of the first event of the log: 64 zeros. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * An audit record with its place in the hash chain. `seq` is 1, 2, 3… over the whole log (every
 * instance), `prevHash` the hash of event `seq - 1` (or of the retention checkpoint, or GENESIS_HASH),
 * `hash` = {@link chainHash}(prevHash, record).
 */
export interface ChainedAuditRecord extends AuditRecord {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/**
 * What the chain hash covers: everything an event says, in the shape an exported event shows it, so an
 * auditor can recompute the hash from an export line alone. Empty strings count as absent and metadata
 * values as strings (the export's `map<string, string>`). `id` (recorderId:recorderSeq) is covered;
 * the sequence number is not — an event's position is fixed by `prevHash` linking it to its predecessor.
 */
export interface HashableAuditEvent {
  readonly id: string;
  /** ISO-8601 with milliseconds, UTC. */
  readonly time: string;
  readonly type: string;
  readonly outcome: AuditOutcome;
  readonly actor?: { readonly kind: AuditActor["kind"]; readonly id?: string; readonly display?: string; readonly onBehalfOf?: string } | undefined;
  readonly target?: { readonly kind: string; readonly id: string } | undefined;
  readonly ip?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly requestId?: string | undefined;
  readonly method?: string | undefined;
  readonly reason?: string | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/** The hashable view of a stored record. */
export function hashableFromRecord(record: AuditRecord): HashableAuditEvent {
  return {
    id: record._id,
    time: record.time.toISOString(),
    type: record.type,
    outcome: record.outcome,
    actor: record.actor ? { kind: record.actor.kind, id: record.actor.id, display: record.actor.display, onBehalfOf: record.actor.onBehalfOf } : undefined,
    target: record.target,
    ip: record.ip,
    userAgent: record.userAgent,
    requestId: record.requestId,
    method: record.method,
    reason: record.reason,
    metadata: record.metadata ? Object.fromEntries(Object.entries(record.metadata).map(([k, v]) => [k, String(v)])) : undefined,
  };
}

/** SHA-256 (lowercase hex) over `prevHash`, a newline and the canonical JSON of the event. */
export function chainHash(prevHash: string, event: HashableAuditEvent): string {
  return createHash("sha256").update(prevHash).update("\n").update(canonicalHashInput(event)).digest("hex");
}

/** The event as JSON with keys sorted at every level and empty strings, empty objects and undefined left out. */
export function canonicalHashInput(event: HashableAuditEvent): string {
  return canonical(event) ?? "{}";
}

function canonical(value: unknown): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "object") {
    const parts: string[] = [];
    for (const key of Object.keys(value).sort()) {
      const inner = canonical((value as Record<string, unknown>)[key]);
      if (inner !== undefined) parts.push(`${JSON.stringify(key)}:${inner}`);
    }
    return parts.length === 0 ? undefined : `{${parts.join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Where a chain continues: the seq and hash of the newest chained event (or of the checkpoint, or
 * genesis), and that event's time when there is one.
 */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
  readonly time?: Date | undefined;
}

/**
 * Links `records` after `head`. Times never decrease along the chain: a record accepted before its
 * predecessor was (queued in this process while a security-critical event went straight through, or
 * accepted by another instance whose clock is behind) takes its predecessor's time. So `time` orders
 * events as `seq` does, and verification can check it.
 */
export function chainRecords(records: readonly AuditRecord[], head: ChainHead): ChainedAuditRecord[] {
  let { seq, hash, time } = head;
  return records.map((record) => {
    const prevHash = hash;
    seq += 1;
    const stamped = time !== undefined && record.time.getTime() < time.getTime() ? { ...record, time } : record;
    time = stamped.time;
    hash = chainHash(prevHash, hashableFromRecord(stamped));
    return { ...stamped, seq, prevHash, hash };
  });
}

/** Whether a string is a chain hash: 64 lowercase hex digits. */
export function isChainHash(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value);
}

/**
 * Seals chained events with an HMAC only the gateway's instances can compute (a key derived from the
 * shared encryption key). The public SHA-256 chain lets anyone holding an export recompute every hash;
 * the seal is what stops someone with write access to the database from appending, or rewriting a
 * stretch of, well-formed events: they can recompute hashes but not seals.
 */
export interface ChainSealer {
  /** Links and seals `records` after `head` (see {@link chainRecords}). */
  chain(records: readonly AuditRecord[], head: ChainHead): SealedAuditRecord[];
  /** The gateway's seal of the event with this seq and hash. */
  seal(seq: number, hash: string): string;
  /** Whether `seal` is the gateway's seal of the event with this seq and hash. */
  verify(seq: number, hash: string, seal: string | undefined): boolean;
}

/** A chained record with the gateway's seal over its seq and hash. */
export interface SealedAuditRecord extends ChainedAuditRecord {
  readonly seal: string;
}

export function createChainSealer(key: Uint8Array): ChainSealer {
  const hmacKey = hmacKeyOf(key);
  const sealOf = (seq: number, hash: string) => createHmac("sha256", hmacKey).update(`${seq}:${hash}`).digest("base64url");
  return {
    chain: (records, head) => chainRecords(records, head).map((record) => ({ ...record, seal: sealOf(record.seq, record.hash) })),
    seal: sealOf,
    verify(seq, hash, seal) {
      if (typeof seal !== "string") return false;
      const expected = Buffer.from(sealOf(seq, hash));
      const given = Buffer.from(seal);
      return expected.length === given.length && timingSafeEqual(expected, given);
    },
  };
}
