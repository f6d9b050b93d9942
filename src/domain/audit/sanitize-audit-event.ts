import type { AuditActor, AuditEventInput, AuditOutcome, AuditRecord } from "./audit-event.ts";

const TYPE_PATTERN = /^[a-z0-9_.]{1,64}$/;
const OUTCOMES: readonly string[] = ["success", "failure", "denied", "error"] satisfies readonly AuditOutcome[];
const ACTOR_KINDS: readonly string[] = ["user", "api_key", "anonymous", "system"] satisfies readonly AuditActor["kind"][];

/** Longest stored free-text value, in code points; longer values are cut and end with "…". */
export const MAX_AUDIT_STRING = 512;
/** Most metadata entries kept; beyond it the first 31 are kept plus `_dropped: <how many were not>`. */
export const MAX_AUDIT_METADATA_ENTRIES = 32;
const MAX_SHORT_STRING = 64; // ip, target kind, metadata keys
const REDACTED = "[redacted]";
const DEFAULT_DISPLAY: Readonly<Record<AuditActor["kind"], string | undefined>> = { anonymous: "anonymous", system: "system", user: undefined, api_key: undefined };
// Keys that match a secret-looking part but name no secret: `username_key` is the normalised username
// a failed login attempted (the subject of the failed-logins-per-user finding); AI queries count tokens
// (numbers of words, not credentials) and credentials carry the version of the key that wraps them.
const NOT_SECRET_KEYS: ReadonlySet<string> = new Set(["username_key", "input_tokens", "output_tokens", "daily_token_budget", "monthly_token_budget", "key_version"]);

// C0/C1 controls (newlines forge log lines, ESC drives terminals), line separators and bidi overrides
// (which make text display differently from what is stored).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SECRET_KEY_PARTS = ["password", "passwd", "secret", "token", "code", "key", "authorization", "cookie", "otp", "totp"];

/**
 * Turns caller input into a storable record: nothing unbounded, no control characters, no secrets in
 * metadata. Throws a TypeError for a malformed `type` (must match `[a-z0-9_.]{1,64}`), an unknown
 * `outcome` or actor kind: those are programming errors in the caller, not runtime conditions.
 */
export function sanitizeAuditEvent(input: AuditEventInput, stamp: { time: Date; recorderId: string; recorderSeq: number }): AuditRecord {
  if (typeof input.type !== "string" || !TYPE_PATTERN.test(input.type)) {
    throw new TypeError(`invalid audit event type ${JSON.stringify(boundString(String(input.type), MAX_SHORT_STRING))}: use 1-64 of [a-z0-9_.]`);
  }
  if (!OUTCOMES.includes(input.outcome)) throw new TypeError(`invalid audit outcome ${JSON.stringify(String(input.outcome).slice(0, 16))}`);
  if (input.actor && !ACTOR_KINDS.includes(input.actor.kind)) throw new TypeError(`invalid audit actor kind ${JSON.stringify(String(input.actor.kind).slice(0, 16))}`);

  const record: Record<string, unknown> = {
    _id: `${stamp.recorderId}:${stamp.recorderSeq}`,
    time: stamp.time,
    type: input.type,
    outcome: input.outcome,
  };
  // An event without an actor is the server's own doing; anonymous and system actors are named by kind.
  const actor = input.actor ?? { kind: "system" };
  record["actor"] = withoutUndefined({
    kind: actor.kind,
    id: optionalString(actor.id, MAX_AUDIT_STRING),
    display: optionalString(actor.display ?? DEFAULT_DISPLAY[actor.kind], MAX_AUDIT_STRING),
    onBehalfOf: actor.kind === "api_key" ? optionalString(actor.onBehalfOf, MAX_AUDIT_STRING) : undefined,
  });
  if (input.target) record["target"] = { kind: boundString(String(input.target.kind), MAX_SHORT_STRING), id: boundString(String(input.target.id), MAX_AUDIT_STRING) };
  record["ip"] = optionalString(input.ip, MAX_SHORT_STRING);
  record["userAgent"] = optionalString(input.userAgent, MAX_AUDIT_STRING);
  record["requestId"] = optionalString(input.requestId, MAX_AUDIT_STRING);
  record["method"] = optionalString(input.method, MAX_AUDIT_STRING);
  record["reason"] = optionalString(input.reason, MAX_AUDIT_STRING);
  if (input.metadata) record["metadata"] = sanitizeMetadata(input.metadata);
  record["recorderId"] = stamp.recorderId;
  record["recorderSeq"] = stamp.recorderSeq;
  return withoutUndefined(record) as unknown as AuditRecord;
}

/**
 * Replaces lone surrogates with U+FFFD, removes control characters, then cuts to `max` code points
 * (never inside a surrogate pair). A lone surrogate (a Connect JSON request can carry "\ud800") would be
 * hashed as such but stored as U+FFFD, and the genuine event would then fail verification.
 */
export function boundString(value: string, max: number): string {
  const clean = value.toWellFormed().replace(CONTROL_CHARACTERS, "");
  if (clean.length <= max) return clean;
  const codePoints = Array.from(clean);
  return codePoints.length <= max ? clean : `${codePoints.slice(0, max - 1).join("")}…`;
}

/**
 * Whether a metadata key may hold a secret: it contains password, passwd, secret, token, code, key,
 * authorization, cookie, otp or totp anywhere (case-insensitive). Identifiers of such things are fine,
 * so a key whose last word is `id`/`ids` (`keyId`, `api_key_id`, `tokenIds`) is not secret.
 */
export function isSecretMetadataKey(key: string): boolean {
  if (NOT_SECRET_KEYS.has(key)) return false;
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
  const last = words.at(-1);
  if (words.length > 1 && (last === "id" || last === "ids")) return false;
  const lower = key.toLowerCase();
  return SECRET_KEY_PARTS.some((part) => lower.includes(part));
}

function sanitizeMetadata(metadata: Record<string, unknown>): Record<string, string | number | boolean> {
  const entries = Object.entries(metadata);
  const kept = entries.length > MAX_AUDIT_METADATA_ENTRIES ? entries.slice(0, MAX_AUDIT_METADATA_ENTRIES - 1) : entries;
  const result: Record<string, string | number | boolean> = {};
  for (const [rawKey, value] of kept) {
    const key = storableKey(rawKey);
    result[key] = isSecretMetadataKey(rawKey) || isSecretMetadataKey(key) ? REDACTED : storableValue(value);
  }
  if (kept.length < entries.length) result["_dropped"] = entries.length - kept.length;
  return result;
}

// MongoDB (and FerretDB) reserve "$" prefixes and treat "." as a path separator in field names.
function storableKey(key: string): string {
  const bounded = boundString(key, MAX_SHORT_STRING).replace(/\./g, "_").replace(/^\$/, "_");
  return bounded.length > 0 ? bounded : "_";
}

function storableValue(value: unknown): string | number | boolean {
  if (typeof value === "boolean") return value;
  // NaN and ±Infinity have no JSON form, so the canonical serialization could not represent them.
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  return boundString(String(value), MAX_AUDIT_STRING);
}

function optionalString(value: string | undefined, max: number): string | undefined {
  return value === undefined || value === null ? undefined : boundString(String(value), max);
}

function withoutUndefined<T extends Record<string, unknown>>(object: T): T {
  for (const key of Object.keys(object)) if (object[key] === undefined) delete object[key];
  return object;
}
