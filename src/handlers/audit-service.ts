import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { AuditExportFormat, ChainBreakReason, type AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { SuspiciousActivityKind } from "../../gen/portcullis/v1/audit_pb.js";
import { validateAuditFilter, describeAuditFilter } from "../domain/audit/audit-filter.ts";
import type { AuditLog, AuditReader } from "../domain/audit/audit-log.ts";
import type { AuditLogStore } from "../domain/audit/audit-log-store.ts";
import { MANIFEST_TYP } from "../domain/audit/audit-signatures.ts";
import type { AuditWatch } from "../domain/audit/audit-watch.ts";
import type { ChainBreakReason as DomainBreak } from "../domain/audit/chain-check.ts";
import type { FindingKind } from "../domain/audit/suspicious-activity.ts";
import type { SuspiciousActivityService } from "../domain/audit/auto-response.ts";
import { DomainError } from "../domain/errors.ts";
import { clientKey, principalKey, requestIdKey } from "../interceptors/context-keys.ts";
import { auditEventToProto, filterFromProto, optionalDate, orderFromProto, severityFromProto, severityToProto } from "./audit-converters.ts";
import { createChunker, createExportWriter, type ExportFormat } from "./audit-export.ts";
import { timestamp } from "./converters.ts";

export interface AuditHandlerDeps {
  readonly log: AuditLog;
  readonly store: AuditLogStore;
  readonly watch: AuditWatch;
  readonly suspicious: SuspiciousActivityService;
}

const BREAK_TO_PROTO: Readonly<Record<DomainBreak, ChainBreakReason>> = {
  modified: ChainBreakReason.MODIFIED,
  deleted: ChainBreakReason.DELETED,
  inserted: ChainBreakReason.INSERTED,
  reordered: ChainBreakReason.REORDERED,
  head_mismatch: ChainBreakReason.HEAD_MISMATCH,
};
const KIND_TO_PROTO: Readonly<Record<FindingKind, SuspiciousActivityKind>> = {
  failed_logins_per_user: SuspiciousActivityKind.FAILED_LOGINS_PER_USER,
  failed_logins_per_ip: SuspiciousActivityKind.FAILED_LOGINS_PER_IP,
  refresh_token_reuse: SuspiciousActivityKind.REFRESH_TOKEN_REUSE,
  mfa_failures: SuspiciousActivityKind.MFA_FAILURES,
  permission_denied_burst: SuspiciousActivityKind.PERMISSION_DENIED_BURST,
  api_key_many_ips: SuspiciousActivityKind.API_KEY_MANY_IPS,
  login_from_new_ip: SuspiciousActivityKind.LOGIN_FROM_NEW_IP,
  emergency_action: SuspiciousActivityKind.EMERGENCY_ACTION,
};
const EXPORT_PAGE = 1000;
const CHUNK_BYTES = 64 * 1024;

/** The caller; the interceptors guarantee an authenticated principal on every AuditService method. */
function reader(ctx: HandlerContext): AuditReader {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw new DomainError("unauthenticated", "credentials required");
  return { principal, client: ctx.values.get(clientKey), requestId: ctx.values.get(requestIdKey) };
}

function sequence(value: bigint | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new DomainError("invalid_argument", `${field} is too large`);
  return Number(value);
}

/** AuditService: thin conversions around the audit log domain (src/domain/audit). */
export function createAuditHandlers(deps: AuditHandlerDeps): Partial<ServiceImpl<typeof AuditService>> {
  return {
    async queryAuditEvents(req, ctx) {
      const page = await deps.log.query(reader(ctx), filterFromProto(req.filter), { pageSize: req.pageSize, pageToken: req.pageToken, order: orderFromProto(req.order, "desc") });
      return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
    },

    async listMyAuditEvents(req, ctx) {
      const page = await deps.log.listMine(reader(ctx), {
        startTime: optionalDate(req.startTime, "start_time"),
        endTime: optionalDate(req.endTime, "end_time"),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
    },

    async getSuspiciousActivity(req, ctx) {
      const caller = reader(ctx);
      const result = await deps.suspicious.analyse(caller, {
        start: optionalDate(req.startTime, "start_time"),
        end: optionalDate(req.endTime, "end_time"),
        minSeverity: severityFromProto(req.minSeverity),
      });
      return {
        findings: result.findings.map((f) => ({
          kind: KIND_TO_PROTO[f.kind],
          severity: severityToProto(f.severity),
          subject: f.subject,
          count: BigInt(f.count),
          firstSeen: timestamp(f.firstSeen),
          lastSeen: timestamp(f.lastSeen),
          sampleEventIds: [...f.sampleEventIds],
          description: f.description,
        })),
        startTime: timestamp(result.start),
        endTime: timestamp(result.end),
        eventsAnalyzed: BigInt(result.eventsAnalyzed),
      };
    },

    async *exportAuditEvents(req, ctx) {
      // 1. Validate everything before the first byte: errors after it would leave a truncated file.
      const caller = reader(ctx);
      const format: ExportFormat | undefined = req.format === AuditExportFormat.JSONL ? "jsonl" : req.format === AuditExportFormat.CSV ? "csv" : undefined;
      if (!format) throw new DomainError("invalid_argument", "format must be AUDIT_EXPORT_FORMAT_JSONL or AUDIT_EXPORT_FORMAT_CSV");
      const filter = validateAuditFilter(filterFromProto(req.filter));
      const order = orderFromProto(req.order, "asc");
      // 2. Audit the export, then pin the head: the export covers the log as of now, whatever arrives later.
      await deps.log.noteExport(caller, filter, format);
      const head = await deps.log.signHead();
      const writer = createExportWriter(format);
      const scope = describeAuditFilter(filter);
      const complete = Object.keys(scope).length === 0;
      const chunker = createChunker(CHUNK_BYTES);
      chunker.add(writer.header());
      let first = true;
      const contentType = format === "csv" ? "text/csv" : "application/x-ndjson";
      const filename = `audit-${new Date().toISOString().replace(/[:.]/g, "-")}.${format}`;
      const flush = function* (force: boolean) {
        for (const data of chunker.take(force)) {
          yield first ? { data, contentType, filename } : { data };
          first = false;
        }
      };
      // 3. Events page by page up to the pinned head, then the signed manifest.
      let cursor: number | undefined = order === "asc" ? undefined : head.seq + 1;
      let unsealed: number | undefined;
      for (;;) {
        if (ctx.signal.aborted) return;
        const rows = await deps.store.query(filter, { order, cursorSeq: cursor, limit: EXPORT_PAGE });
        const inRange = rows.filter((r) => r.seq <= head.seq);
        for (const record of inRange) {
          if (unsealed === undefined && !deps.log.sealed(record)) unsealed = record.seq;
          chunker.add(writer.line(record));
        }
        yield* flush(false);
        if (rows.length < EXPORT_PAGE || inRange.length < rows.length) break;
        cursor = rows.at(-1)!.seq;
      }
      const manifest = writer.manifest({ order, complete, headSequence: head.seq, headHash: head.hash, filter: scope, exportedAt: new Date().toISOString(), ...(unsealed === undefined ? {} : { unsealedSequence: unsealed }) });
      chunker.add(writer.closing(await deps.log.signStatement(MANIFEST_TYP, { ...manifest })));
      yield* flush(true);
    },

    async *watchAuditEvents(req, ctx) {
      reader(ctx);
      const filter = validateAuditFilter({ ...filterFromProto(req.filter), endTime: undefined });
      const after = sequence(req.afterSequence, "after_sequence");
      for await (const message of deps.watch.watch(filter, after, ctx.signal)) {
        if ("event" in message) yield { payload: { case: "event", value: auditEventToProto(message.event) } };
        else yield { payload: { case: "heartbeat", value: { time: timestamp(message.heartbeat.time), headSequence: BigInt(message.heartbeat.headSeq) } } };
      }
    },

    async verifyAuditChain(req) {
      const result = await deps.log.verify({ from: sequence(req.fromSequence, "from_sequence"), to: sequence(req.toSequence, "to_sequence") });
      return {
        ok: result.ok,
        checkedCount: BigInt(result.checked),
        ...(result.break ? { firstBadSequence: BigInt(result.break.seq), reason: BREAK_TO_PROTO[result.break.reason], detail: result.break.detail } : {}),
        headSequence: BigInt(result.head.seq),
        headHash: result.head.hash,
        headSignature: result.headSignature,
      };
    },
  };
}
