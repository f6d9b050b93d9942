import { isIP } from "node:net";
import { DomainError } from "../errors.ts";
import type { AuditOutcome } from "./audit-event.ts";

/**
 * Which audit events a read selects; every set condition must hold. Built only by
 * {@link validateAuditFilter}, so each string is a plain, bounded value (the store uses them as values,
 * never as query operators).
 */
export interface AuditFilter {
  readonly startTime?: Date | undefined;
  /** Exclusive. */
  readonly endTime?: Date | undefined;
  /** Exact types, or prefixes written as `auth.*`. */
  readonly types?: readonly string[] | undefined;
  readonly outcome?: AuditOutcome | undefined;
  readonly actorId?: string | undefined;
  readonly targetId?: string | undefined;
  readonly ip?: string | undefined;
  readonly method?: string | undefined;
  readonly requestId?: string | undefined;
  /** Events whose actor or target is this id (ListMyAuditEvents: the user)… */
  readonly involvingId?: string | undefined;
  /** …or one of these (the user's API keys). Not part of the filter's description: a new key does not invalidate page tokens. */
  readonly involvingAlso?: readonly string[] | undefined;
  /** Only events with a greater seq (the watch poller). */
  readonly afterSeq?: number | undefined;
}

/** A filter as the caller gave it; empty strings and empty lists mean "any". */
export interface AuditFilterInput {
  readonly startTime?: Date | undefined;
  readonly endTime?: Date | undefined;
  readonly types?: readonly string[];
  readonly outcome?: AuditOutcome | undefined;
  readonly actorId?: string;
  readonly targetId?: string;
  readonly ip?: string;
  readonly method?: string;
  readonly requestId?: string;
}

const TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$/;
const METHOD = /^\/[A-Za-z0-9_.]{1,200}\/[A-Za-z0-9_]{1,100}$/;
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,255}$/;
const MAX_TYPES = 32;

/**
 * Checks a caller's filter and returns it normalised. Throws `invalid_argument` naming the field for an
 * inverted time range, a malformed type, IP, method or id — which also refuses anything that looks like
 * a query operator (`$ne`, `{"$gt": …}`): ids are letters, digits and `._:@+-`, starting with a letter or digit.
 */
export function validateAuditFilter(input: AuditFilterInput): AuditFilter {
  if (input.startTime && input.endTime && input.startTime.getTime() >= input.endTime.getTime()) {
    throw new DomainError("invalid_argument", "start_time must be before end_time");
  }
  const types = input.types ?? [];
  if (types.length > MAX_TYPES) throw new DomainError("invalid_argument", `at most ${MAX_TYPES} types`);
  for (const type of types) {
    if (type.length > 64 || !TYPE.test(type)) throw new DomainError("invalid_argument", "types: each must be a dotted event type such as auth.login, or a prefix such as auth.*");
  }
  const identifier = (field: string, value: string | undefined) => {
    if (value === undefined || value === "") return undefined;
    if (!IDENTIFIER.test(value)) throw new DomainError("invalid_argument", `${field}: not a valid id`);
    return value;
  };
  const ip = input.ip === undefined || input.ip === "" ? undefined : input.ip;
  if (ip !== undefined && isIP(ip) === 0) throw new DomainError("invalid_argument", "ip: not an IP address");
  const method = input.method === undefined || input.method === "" ? undefined : input.method;
  if (method !== undefined && !METHOD.test(method)) throw new DomainError("invalid_argument", "method: must be a full method name such as /portcullis.v1.AuthService/Login");
  return {
    startTime: input.startTime,
    endTime: input.endTime,
    types: types.length > 0 ? [...new Set(types)] : undefined,
    outcome: input.outcome,
    actorId: identifier("actor_id", input.actorId),
    targetId: identifier("target_id", input.targetId),
    ip,
    method,
    requestId: identifier("request_id", input.requestId),
  };
}

/** Whether a record matches a filter (the watch stream filters in memory what the poller read). */
export function matchesAuditFilter(
  filter: AuditFilter,
  event: { time: Date; type: string; outcome: AuditOutcome; actor?: { id?: string }; target?: { id: string }; ip?: string; method?: string; requestId?: string },
): boolean {
  if (filter.startTime && event.time < filter.startTime) return false;
  if (filter.endTime && event.time >= filter.endTime) return false;
  if (filter.types && !filter.types.some((t) => (t.endsWith(".*") ? event.type.startsWith(t.slice(0, -1)) : event.type === t))) return false;
  if (filter.outcome && event.outcome !== filter.outcome) return false;
  if (filter.actorId && event.actor?.id !== filter.actorId) return false;
  if (filter.targetId && event.target?.id !== filter.targetId) return false;
  if (filter.ip && event.ip !== filter.ip) return false;
  if (filter.method && event.method !== filter.method) return false;
  if (filter.requestId && event.requestId !== filter.requestId) return false;
  if (filter.involvingId) {
    const ids = new Set([filter.involvingId, ...(filter.involvingAlso ?? [])]);
    if (!ids.has(event.actor?.id ?? "") && !ids.has(event.target?.id ?? "")) return false;
  }
  return true;
}

/** A stable description of the filter (for binding cursors to it, and for auditing reads). */
export function describeAuditFilter(filter: AuditFilter): Record<string, string> {
  const out: Record<string, string> = {};
  if (filter.startTime) out["start_time"] = filter.startTime.toISOString();
  if (filter.endTime) out["end_time"] = filter.endTime.toISOString();
  if (filter.types) out["types"] = [...filter.types].sort().join(",");
  if (filter.outcome) out["outcome"] = filter.outcome;
  if (filter.actorId) out["actor_id"] = filter.actorId;
  if (filter.targetId) out["target_id"] = filter.targetId;
  if (filter.ip) out["ip"] = filter.ip;
  if (filter.method) out["method"] = filter.method;
  if (filter.requestId) out["request_id"] = filter.requestId;
  if (filter.involvingId) out["involving_id"] = filter.involvingId;
  return out;
}
