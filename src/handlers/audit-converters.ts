import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema, AuditOutcome, type AuditEventFilter } from "../../gen/portcullis/v1/audit_pb.js";
import { PrincipalKind, Severity, SortOrder } from "../../gen/portcullis/v1/common_pb.js";
import type { SealedAuditRecord } from "../domain/audit/audit-chain.ts";
import type { AuditActor, AuditOutcome as DomainOutcome } from "../domain/audit/audit-event.ts";
import type { AuditFilterInput } from "../domain/audit/audit-filter.ts";
import type { Severity as DomainSeverity } from "../domain/audit/suspicious-activity.ts";
import { DomainError } from "../domain/errors.ts";
import { timestamp } from "./converters.ts";

const OUTCOME_TO_PROTO: Readonly<Record<DomainOutcome, AuditOutcome>> = {
  success: AuditOutcome.SUCCESS,
  failure: AuditOutcome.FAILURE,
  denied: AuditOutcome.DENIED,
  error: AuditOutcome.ERROR,
};
const KIND_TO_PROTO: Readonly<Record<AuditActor["kind"], PrincipalKind>> = {
  user: PrincipalKind.USER,
  api_key: PrincipalKind.API_KEY,
  anonymous: PrincipalKind.ANONYMOUS,
  system: PrincipalKind.SYSTEM,
};
const SEVERITY_TO_PROTO: Readonly<Record<DomainSeverity, Severity>> = { low: Severity.LOW, medium: Severity.MEDIUM, high: Severity.HIGH, critical: Severity.CRITICAL };

export function severityToProto(severity: DomainSeverity): Severity {
  return SEVERITY_TO_PROTO[severity];
}

/** A severity from a request; UNSPECIFIED means none; unknown numbers are INVALID_ARGUMENT. */
export function severityFromProto(severity: Severity): DomainSeverity | undefined {
  if (severity === Severity.UNSPECIFIED) return undefined;
  const found = (Object.entries(SEVERITY_TO_PROTO) as Array<[DomainSeverity, Severity]>).find(([, v]) => v === severity);
  if (!found) throw new DomainError("invalid_argument", "min_severity is not a known severity");
  return found[0];
}

/** An outcome from a filter; UNSPECIFIED means any; unknown numbers are INVALID_ARGUMENT. */
export function outcomeFromProto(outcome: AuditOutcome): DomainOutcome | undefined {
  if (outcome === AuditOutcome.UNSPECIFIED) return undefined;
  const found = (Object.entries(OUTCOME_TO_PROTO) as Array<[DomainOutcome, AuditOutcome]>).find(([, v]) => v === outcome);
  if (!found) throw new DomainError("invalid_argument", "outcome is not a known audit outcome");
  return found[0];
}

/** The order of a read; `fallback` when unset; unknown numbers are INVALID_ARGUMENT. */
export function orderFromProto(order: SortOrder, fallback: "asc" | "desc"): "asc" | "desc" {
  if (order === SortOrder.UNSPECIFIED) return fallback;
  if (order === SortOrder.ASCENDING) return "asc";
  if (order === SortOrder.DESCENDING) return "desc";
  throw new DomainError("invalid_argument", "order must be SORT_ORDER_ASCENDING or SORT_ORDER_DESCENDING");
}

export function optionalDate(value: Timestamp | undefined, field: string): Date | undefined {
  if (!value) return undefined;
  const date = timestampDate(value);
  if (Number.isNaN(date.getTime()) || value.nanos < 0 || value.nanos > 999_999_999) throw new DomainError("invalid_argument", `${field} is not a valid time`);
  return date;
}

export function filterFromProto(filter: AuditEventFilter | undefined): AuditFilterInput {
  if (!filter) return {};
  return {
    startTime: optionalDate(filter.startTime, "start_time"),
    endTime: optionalDate(filter.endTime, "end_time"),
    types: filter.types,
    outcome: outcomeFromProto(filter.outcome),
    actorId: filter.actorId,
    targetId: filter.targetId,
    ip: filter.ip,
    method: filter.method,
    requestId: filter.requestId,
  };
}

/** A stored event as the API shows it; metadata values become strings (as the chain hash covers them). */
export function auditEventToProto(record: SealedAuditRecord): MessageInitShape<typeof AuditEventSchema> {
  return {
    id: record._id,
    sequence: BigInt(record.seq),
    time: timestamp(record.time),
    type: record.type,
    outcome: OUTCOME_TO_PROTO[record.outcome],
    actor: record.actor ? { id: record.actor.id ?? "", kind: KIND_TO_PROTO[record.actor.kind], displayName: record.actor.display ?? "", onBehalfOfUserId: record.actor.onBehalfOf ?? "" } : undefined,
    target: record.target ? { kind: record.target.kind, id: record.target.id } : undefined,
    ip: record.ip ?? "",
    userAgent: record.userAgent ?? "",
    requestId: record.requestId ?? "",
    method: record.method ?? "",
    reason: record.reason ?? "",
    metadata: Object.fromEntries(Object.entries(record.metadata ?? {}).map(([k, v]) => [k, String(v)])),
    prevHash: record.prevHash,
    hash: record.hash,
  };
}

/** The full message (for JSON export). */
export function auditEventMessage(record: SealedAuditRecord) {
  return create(AuditEventSchema, auditEventToProto(record));
}
