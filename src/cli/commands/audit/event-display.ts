import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuditOutcome, type AuditEvent } from "../../../../gen/portcullis/v1/audit_pb.js";
import { PrincipalKind } from "../../../../gen/portcullis/v1/common_pb.js";
import { enumLabel } from "../../output/enum-labels.ts";

export const EVENT_HEADERS = ["SEQ", "TIME", "TYPE", "OUTCOME", "ACTOR", "TARGET", "IP", "REASON"] as const;

/** One event as a table row (the full record, hashes included, is in --json). */
export function eventRow(event: AuditEvent): string[] {
  const actor = event.actor ? `${enumLabel(PrincipalKind, event.actor.kind)}:${event.actor.displayName || event.actor.id || "-"}` : "-";
  return [
    String(event.sequence),
    event.time ? timestampDate(event.time).toISOString() : "-",
    event.type,
    enumLabel(AuditOutcome, event.outcome),
    actor,
    event.target ? `${event.target.kind}:${event.target.id}` : "-",
    event.ip || "-",
    event.reason.length > 60 ? `${event.reason.slice(0, 59)}…` : event.reason,
  ];
}
