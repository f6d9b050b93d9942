import type { JWK } from "jose";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import { auditedCaller } from "./audit-caller.ts";
import { GENESIS_HASH, hashableFromRecord, type ChainSealer, type SealedAuditRecord } from "./audit-chain.ts";
import type { AuditCursorCodec } from "./audit-cursor.ts";
import { describeAuditFilter, validateAuditFilter, type AuditFilter, type AuditFilterInput } from "./audit-filter.ts";
import type { AuditLogStore, AuditSealsStore, SignedChainPoint } from "./audit-log-store.ts";
import type { AuditRecorder } from "./audit-recorder.ts";
import { resolvePageSize } from "../users/user-paging.ts";
import { CHECKPOINT_TYP, HEAD_TYP, verifyStatement, type StatementSigner } from "./audit-signatures.ts";
import { createChainCheck, type ChainBreak } from "./chain-check.ts";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
const VERIFY_BATCH = 1000;

export interface AuditPage {
  readonly events: SealedAuditRecord[];
  readonly nextPageToken: string;
}

export interface ChainVerification {
  readonly ok: boolean;
  readonly checked: number;
  readonly break?: ChainBreak | undefined;
  readonly head: { seq: number; hash: string };
  /** A fresh signature of the head (compact JWS). */
  readonly headSignature: string;
}

export interface AuditLogDeps {
  readonly store: AuditLogStore;
  readonly seals: AuditSealsStore;
  readonly sealer: ChainSealer;
  readonly cursors: AuditCursorCodec;
  readonly signer: StatementSigner;
  /** Every public key ever published (retired ones included): old signatures must stay verifiable. */
  readonly publishedKeys: () => Promise<JWK[]>;
  readonly audit: AuditRecorder;
  /** The ids of a user's API keys, whose events are the user's too (ListMyAuditEvents). */
  readonly apiKeyIdsOf?: (userId: string) => Promise<readonly string[]>;
  readonly now?: () => Date;
}

/** Reading, verifying and signing the audit log. */
export interface AuditLog {
  /** QueryAuditEvents: a page of events matching the filter; the read itself is audited. */
  query(reader: RequestContext, input: AuditFilterInput, options: { pageSize: number; pageToken: string; order: "asc" | "desc" }): Promise<AuditPage>;
  /** ListMyAuditEvents: the caller's own events (as actor or target), newest first. */
  listMine(reader: RequestContext, input: { startTime?: Date | undefined; endTime?: Date | undefined; pageSize: number; pageToken: string }): Promise<AuditPage>;
  /** Records an export (who, which filter, which format) before its first byte is sent; resolves with the event id. */
  noteExport(reader: RequestContext, filter: AuditFilter, format: string): Promise<string>;
  /** Signs the head of the chain now and keeps the signature (the retention sweep and verification rely on it). */
  signHead(): Promise<SignedChainPoint>;
  /** Signs a point of the chain (a retention checkpoint) without storing it. */
  signPoint(typ: string, point: { seq: number; hash: string }): Promise<SignedChainPoint>;
  /** Whether a stored event carries the gateway's seal (an export states the first that does not). */
  sealed(record: SealedAuditRecord): boolean;
  /** Signs a statement (an export manifest) with the server's current signing key. */
  signStatement(typ: string, statement: Record<string, unknown>): Promise<string>;
  /** The latest retention checkpoint, if it is genuine; a forged one is reported as a break. */
  checkpoint(): Promise<{ point?: SignedChainPoint; forged?: ChainBreak }>;
  /**
   * VerifyAuditChain: recomputes hashes and links over [from, to] (default: the whole retained log),
   * checks every seal, and compares the log's end with the latest signed head. Returns the first break.
   */
  verify(range: { from?: number | undefined; to?: number | undefined }): Promise<ChainVerification>;
}

export function createAuditLog(deps: AuditLogDeps): AuditLog {
  const now = deps.now ?? (() => new Date());

  const pageSizeOf = (requested: number) => resolvePageSize(requested, { defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE });

  const page = async (filter: AuditFilter, scope: Record<string, string>, options: { pageSize: number; pageToken: string; order: "asc" | "desc" }): Promise<AuditPage> => {
    const limit = pageSizeOf(options.pageSize);
    const cursor = options.pageToken === "" ? undefined : deps.cursors.decode(options.pageToken, { ...scope, order: options.order });
    const rows = await deps.store.query(filter, { order: options.order, cursorSeq: cursor?.seq, limit: limit + 1 });
    const events = rows.slice(0, limit);
    const last = events.at(-1);
    const nextPageToken = rows.length > limit && last ? deps.cursors.encode({ seq: last.seq, order: options.order }, { ...scope, order: options.order }) : "";
    return { events, nextPageToken };
  };

  const recordRead = (reader: RequestContext, type: string, filter: AuditFilter, extra: Record<string, string | number> = {}) =>
    deps.audit.record({
      type,
      outcome: "success",
      ...auditedCaller(reader),
      metadata: { ...describeAuditFilter(filter), ...extra },
    });

  const signPoint = async (typ: string, point: { seq: number; hash: string }): Promise<SignedChainPoint> => ({
    seq: point.seq,
    hash: point.hash,
    jws: await deps.signer.sign(typ, { seq: point.seq, hash: point.hash }),
    at: now(),
  });

  /** Whether a stored signed point is genuine (signed by one of our keys, over exactly this seq and hash). */
  const genuine = async (typ: string, point: SignedChainPoint) => {
    const result = await verifyStatement(point.jws, typ, await deps.publishedKeys());
    return result.ok && result.statement["seq"] === point.seq && result.statement["hash"] === point.hash;
  };

  const signHead = async (): Promise<SignedChainPoint> => {
    const head = (await deps.store.head()) ?? { seq: 0, hash: GENESIS_HASH };
    const point = await signPoint(HEAD_TYP, head);
    if (head.seq > 0) await deps.seals.saveHead(point);
    return point;
  };

  return {
    /** QueryAuditEvents: a page of events matching the filter; the read itself is audited. */
    async query(reader: RequestContext, input: AuditFilterInput, options: { pageSize: number; pageToken: string; order: "asc" | "desc" }): Promise<AuditPage> {
      const filter = validateAuditFilter(input);
      const result = await page(filter, { kind: "query", ...describeAuditFilter(filter) }, options);
      recordRead(reader, "audit.query", filter, { order: options.order, returned: result.events.length });
      return result;
    },

    /** ListMyAuditEvents: the caller's own events (as actor or target), newest first. */
    async listMine(reader: RequestContext, input: { startTime?: Date | undefined; endTime?: Date | undefined; pageSize: number; pageToken: string }): Promise<AuditPage> {
      const base = validateAuditFilter({ startTime: input.startTime, endTime: input.endTime });
      const keyIds = (await deps.apiKeyIdsOf?.(reader.principal.userId)) ?? [];
      const filter: AuditFilter = { ...base, involvingId: reader.principal.userId, involvingAlso: keyIds };
      // The scope binds the token to this user: another user's token is refused, never followed.
      const result = await page(filter, { kind: "mine", ...describeAuditFilter(filter) }, { ...input, order: "desc" });
      recordRead(reader, "audit.list_mine", filter, { returned: result.events.length });
      return result;
    },

    /** Records an export (who, which filter, which format) before its first byte is sent; resolves with the event id. */
    noteExport(reader: RequestContext, filter: AuditFilter, format: string) {
      return deps.audit.recordNow({
        type: "audit.export",
        outcome: "success",
        ...auditedCaller(reader),
        metadata: { ...describeAuditFilter(filter), format },
      });
    },

    signHead,
    signPoint,
    /** Whether a stored event carries the gateway's seal (an export states the first that does not). */
    sealed: (record: SealedAuditRecord) => deps.sealer.verify(record.seq, record.hash, record.seal),
    /** Signs a statement (an export manifest) with the server's current signing key. */
    signStatement: (typ: string, statement: Record<string, unknown>) => deps.signer.sign(typ, statement),

    /** The latest retention checkpoint, if it is genuine; a forged one is reported as a break. */
    async checkpoint(): Promise<{ point?: SignedChainPoint; forged?: ChainBreak }> {
      const point = await deps.seals.latestCheckpoint();
      if (!point) return {};
      if (!(await genuine(CHECKPOINT_TYP, point))) {
        return { forged: { seq: point.seq + 1, reason: "deleted", detail: `the retention checkpoint at ${point.seq} is not signed by the gateway` } };
      }
      return { point };
    },

    /**
     * VerifyAuditChain: recomputes hashes and links over [from, to] (default: the whole retained log),
     * checks every seal, and compares the log's end with the latest signed head. Returns the first break.
     */
    async verify(range: { from?: number | undefined; to?: number | undefined }): Promise<ChainVerification> {
      if (range.from !== undefined && range.to !== undefined && range.from > range.to) throw new DomainError("invalid_argument", "from_sequence must not be after to_sequence");
      const head = (await deps.store.head()) ?? { seq: 0, hash: GENESIS_HASH };
      const headSignature = (await signHead()).jws;
      const result = (checked: number, found?: ChainBreak): ChainVerification => ({ ok: found === undefined, checked, break: found, head, headSignature });

      const { point: checkpoint, forged } = await this.checkpoint();
      if (forged) return result(0, forged);
      const retainedFrom = checkpoint ? checkpoint.seq + 1 : 1;
      const from = Math.max(range.from ?? retainedFrom, retainedFrom);
      const to = range.to ?? Number.MAX_SAFE_INTEGER;
      let anchor: { nextSeq: number; prevHash: string; prevTime?: string } = { nextSeq: from, prevHash: checkpoint && from === retainedFrom ? checkpoint.hash : GENESIS_HASH };
      if (from > retainedFrom) {
        const before = await deps.store.get(from - 1);
        if (!before) return result(0, { seq: from - 1, reason: "deleted", detail: `event ${from - 1} is missing` });
        anchor = { nextSeq: from, prevHash: before.hash, prevTime: before.time.toISOString() };
      }
      const check = createChainCheck({
        anchor,
        findSeqByHash: (hash) => deps.store.findSeqByHash(hash),
        sealed: (entry) => deps.sealer.verify(entry.seq, entry.hash, entry.seal),
      });
      let next = from;
      let lastSeen = from - 1;
      for (;;) {
        const batch = await deps.store.range(next, to, VERIFY_BATCH);
        for (const record of batch) {
          const found = await check.push({ seq: record.seq, prevHash: record.prevHash, hash: record.hash, event: hashableFromRecord(record), seal: record.seal });
          if (found) return result(check.checked, found);
          lastSeen = record.seq;
        }
        if (batch.length < VERIFY_BATCH) break;
        next = lastSeen + 1;
      }
      // Nothing may be missing from the end either: the latest genuine signed head must still be there.
      if (range.to === undefined || range.to >= head.seq) {
        const signed = await deps.seals.latestHead();
        if (signed && signed.seq > lastSeen && (await genuine(HEAD_TYP, signed))) {
          return result(check.checked, {
            seq: lastSeen + 1,
            reason: "head_mismatch",
            detail: `the log ends at ${lastSeen} but a signed head covers events up to ${signed.seq}: events were removed from the end`,
          });
        }
        if (signed && signed.seq <= lastSeen && signed.seq >= from) {
          const at = await deps.store.get(signed.seq);
          if (at && at.hash !== signed.hash && (await genuine(HEAD_TYP, signed))) {
            return result(check.checked, { seq: signed.seq, reason: "head_mismatch", detail: `event ${signed.seq} differs from the signed head` });
          }
        }
      }
      return result(check.checked);
    },
  };
}
