import { toJson } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { AuditEventSchema, AuditExportFormat, ChainBreakReason, type AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { SuspiciousActivityKind } from "../../gen/portcullis/v1/audit_pb.js";
import type { AuditExport, ExportFormat } from "../domain/audit/audit-export.ts";
import { validateAuditFilter } from "../domain/audit/audit-filter.ts";
import type { AuditLog } from "../domain/audit/audit-log.ts";
import type { AuditWatch } from "../domain/audit/audit-watch.ts";
import type { ChainBreakReason as DomainBreak } from "../domain/audit/chain-check.ts";
import type { FindingKind } from "../domain/audit/suspicious-activity.ts";
import type { SuspiciousActivityService } from "../domain/audit/suspicious-activity-service.ts";
import { DomainError } from "../domain/errors.ts";
import { auditEventMessage, auditEventToProto, filterFromProto, optionalDate, orderFromProto, severityFromProto, severityToProto } from "./audit-converters.ts";
import { callerOf } from "./caller.ts";
import { timestamp } from "./converters.ts";

export interface AuditHandlerDeps {
  readonly log: AuditLog;
  readonly exports: AuditExport;
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
// A JSONL export line is the API's JSON form of the event, exactly as QueryAuditEvents would show it.
const jsonOf = (record: Parameters<typeof auditEventMessage>[0]) => toJson(AuditEventSchema, auditEventMessage(record));

function sequence(value: bigint | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new DomainError("invalid_argument", `${field} is too large`);
  return Number(value);
}

/** AuditService: thin conversions around the audit log domain (src/domain/audit). */
export function createAuditHandlers(deps: AuditHandlerDeps): Partial<ServiceImpl<typeof AuditService>> {
  return {
    async queryAuditEvents(req, ctx) {
      const page = await deps.log.query(callerOf(ctx), filterFromProto(req.filter), { pageSize: req.pageSize, pageToken: req.pageToken, order: orderFromProto(req.order, "desc") });
      return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
    },

    async listMyAuditEvents(req, ctx) {
      const page = await deps.log.listMine(callerOf(ctx), {
        startTime: optionalDate(req.startTime, "start_time"),
        endTime: optionalDate(req.endTime, "end_time"),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
    },

    async getSuspiciousActivity(req, ctx) {
      const caller = callerOf(ctx);
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
      const caller = callerOf(ctx);
      const format: ExportFormat | undefined = req.format === AuditExportFormat.JSONL ? "jsonl" : req.format === AuditExportFormat.CSV ? "csv" : undefined;
      if (!format) throw new DomainError("invalid_argument", "format must be AUDIT_EXPORT_FORMAT_JSONL or AUDIT_EXPORT_FORMAT_CSV");
      const request = { format, filter: filterFromProto(req.filter), order: orderFromProto(req.order, "asc"), jsonOf };
      // The first message names the file; the domain refuses bad input before the first chunk.
      const contentType = format === "csv" ? "text/csv" : "application/x-ndjson";
      const filename = `audit-${new Date().toISOString().replace(/[:.]/g, "-")}.${format}`;
      let first = true;
      for await (const data of deps.exports.chunks(caller, request, ctx.signal)) {
        yield first ? { data, contentType, filename } : { data };
        first = false;
      }
    },

    async *watchAuditEvents(req, ctx) {
      callerOf(ctx);
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
