import type { AuditRecord } from "./audit-event.ts";

/**
 * The fields an audit record's integrity covers: everything the event says, and who recorded it in
 * which order. Not `_id` (derived from recorderId and recorderSeq) and not the chain fields a sealer
 * adds later (`seq`, `prevHash`, `hash`).
 */
export const AUDIT_CONTENT_FIELDS = [
  "time",
  "type",
  "outcome",
  "actor",
  "target",
  "ip",
  "userAgent",
  "requestId",
  "method",
  "reason",
  "metadata",
  "recorderId",
  "recorderSeq",
] as const satisfies readonly (keyof AuditRecord)[];

/**
 * A deterministic serialization of a record's content fields: JSON with object keys sorted at every
 * level, `time` as an ISO-8601 string, absent fields omitted. The same event gives the same string
 * whether it is the record the recorder built or the document read back from the database, so a hash
 * over it (the later audit chain) can be verified at any time.
 */
export function canonicalAuditContent(record: AuditRecord): string {
  const content: Record<string, unknown> = {};
  for (const field of AUDIT_CONTENT_FIELDS) {
    const value = record[field];
    if (value !== undefined) content[field] = value;
  }
  return canonicalJson(content);
}

function canonicalJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
