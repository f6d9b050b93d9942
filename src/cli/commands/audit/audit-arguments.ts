import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AuditEventFilterSchema, AuditOutcome, type AuditEventFilter } from "../../../../gen/portcullis/v1/audit_pb.js";
import { Severity, SortOrder } from "../../../../gen/portcullis/v1/common_pb.js";
import { CommandError } from "../../command-error.ts";
import { enumFromLabel } from "../../output/enum-labels.ts";
import { parseDuration } from "../keys/key-arguments.ts";

/** The filter flags shared by `audit query`, `tail` and `export`. */
export const FILTER_OPTIONS = {
  since: { type: "string" },
  until: { type: "string" },
  type: { type: "string", multiple: true },
  outcome: { type: "string" },
  actor: { type: "string" },
  target: { type: "string" },
  ip: { type: "string" },
  method: { type: "string" },
  "request-id": { type: "string" },
} as const;

export const FILTER_HELP = `Filters (all optional; every one given must hold):
  --since WHEN       Events at or after WHEN: a duration back from now (24h, 7d) or an ISO time.
  --until WHEN       Events before WHEN (same forms).
  --type TYPE        Event type, e.g. auth.login; "auth.*" matches a prefix. Repeatable.
  --outcome O        success, failure, denied or error.
  --actor ID         Performed by this user or API key id.
  --target ID        Done to this id.
  --ip ADDRESS       From this client IP address.
  --method NAME      Of this RPC, e.g. /portcullis.v1.AuthService/Login.
  --request-id ID    Of this request id.
`;

const OUTCOMES = [AuditOutcome.SUCCESS, AuditOutcome.FAILURE, AuditOutcome.DENIED, AuditOutcome.ERROR] as const;
const SEVERITIES = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL] as const;

/** `--since` / `--until`: `24h` (ago) or an ISO 8601 time. */
export function parseWhen(text: string, flag: string, now = Date.now()): Timestamp {
  const trimmed = text.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const ms = Date.parse(trimmed);
    if (Number.isNaN(ms)) throw new CommandError(`${flag} is not a valid time; use e.g. 2026-11-23T10:00:00Z or 24h`, 2);
    return timestampFromDate(new Date(ms));
  }
  const ago = Number(parseDuration(trimmed, flag).seconds) * 1000;
  return timestampFromDate(new Date(now - ago));
}

type FilterValues = { [K in keyof typeof FILTER_OPTIONS]?: (typeof FILTER_OPTIONS)[K] extends { multiple: true } ? string[] | undefined : string | undefined };

/** The AuditEventFilter of the filter flags. */
export function parseFilter(values: FilterValues): AuditEventFilter {
  let outcome = AuditOutcome.UNSPECIFIED;
  if (values.outcome !== undefined) {
    const parsed = enumFromLabel(AuditOutcome, values.outcome, OUTCOMES);
    if (parsed === undefined) throw new CommandError("--outcome must be success, failure, denied or error", 2);
    outcome = parsed;
  }
  return create(AuditEventFilterSchema, {
    ...(values.since !== undefined ? { startTime: parseWhen(values.since, "--since") } : {}),
    ...(values.until !== undefined ? { endTime: parseWhen(values.until, "--until") } : {}),
    types: values.type ?? [],
    outcome,
    actorId: values.actor ?? "",
    targetId: values.target ?? "",
    ip: values.ip ?? "",
    method: values.method ?? "",
    requestId: values["request-id"] ?? "",
  });
}

/** `--order asc|desc`. */
export function parseOrder(text: string | undefined, fallback: SortOrder): SortOrder {
  if (text === undefined) return fallback;
  const lower = text.toLowerCase();
  if (lower === "asc" || lower === "ascending") return SortOrder.ASCENDING;
  if (lower === "desc" || lower === "descending") return SortOrder.DESCENDING;
  throw new CommandError("--order must be asc or desc", 2);
}

/** `--min-severity low|medium|high|critical`. */
export function parseSeverity(text: string | undefined): Severity {
  if (text === undefined) return Severity.UNSPECIFIED;
  const severity = enumFromLabel(Severity, text, SEVERITIES);
  if (severity === undefined) throw new CommandError("--min-severity must be low, medium, high or critical", 2);
  return severity;
}

/** A positive whole number flag (`--limit 50`). */
export function parsePositive(text: string | undefined, flag: string, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,9}$/.test(text.trim()) || Number(text) < 1 || Number(text) > max) throw new CommandError(`${flag} must be a whole number from 1 to ${max}`, 2);
  return Number(text);
}
