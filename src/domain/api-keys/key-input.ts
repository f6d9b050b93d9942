import { ALL_PERMISSIONS } from "../permissions.ts";
import { DomainError } from "../errors.ts";

/** What a caller may write into a key: checked here, once, for create, update and revoke alike. */

const MAX_NAME_LENGTH = 100;
const MAX_REASON_LENGTH = 500;
const MAX_METADATA_ENTRIES = 32;
const METADATA_KEY = /^[A-Za-z0-9_.:/-]{1,64}$/;

export function checkName(raw: string): string {
  const name = raw.normalize("NFC").trim();
  if (name.length === 0 || [...name].length > MAX_NAME_LENGTH) throw new DomainError("invalid_argument", `name must be 1 to ${MAX_NAME_LENGTH} characters`);
  if (/\p{Cc}|\p{Cf}/u.test(name)) throw new DomainError("invalid_argument", "name must not contain control characters");
  return name;
}

export function checkReason(raw: string): string {
  const reason = raw.trim();
  if (reason.length === 0) throw new DomainError("invalid_argument", "reason is required");
  if (reason.length > MAX_REASON_LENGTH) throw new DomainError("invalid_argument", `reason must be at most ${MAX_REASON_LENGTH} characters`);
  if (/\p{Cc}/u.test(reason)) throw new DomainError("invalid_argument", "reason must not contain control characters");
  return reason;
}

/** Scopes must be known permissions (INVALID_ARGUMENT) and within `allowed` (PERMISSION_DENIED). */
export function checkScopes(raw: readonly string[], allowed: ReadonlySet<string>, deniedMessage = "a key's scopes must be among your own permissions"): string[] {
  const scopes = [...new Set(raw.map((s) => s.trim()))];
  if (scopes.length === 0) throw new DomainError("invalid_argument", "at least one scope is required");
  const unknown = scopes.find((s) => !ALL_PERMISSIONS.has(s));
  if (unknown !== undefined) throw new DomainError("invalid_argument", `unknown scope ${JSON.stringify(unknown.slice(0, 64))}`);
  if (scopes.some((s) => !allowed.has(s))) throw new DomainError("permission_denied", deniedMessage);
  return scopes.sort();
}

export function checkMetadata(raw: Record<string, string>): Record<string, string> {
  const entries = Object.entries(raw);
  if (entries.length > MAX_METADATA_ENTRIES) throw new DomainError("invalid_argument", `at most ${MAX_METADATA_ENTRIES} metadata entries`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    // Keys become document field names: no `$`, no dots' meaning beyond the allowed alphabet, no prototype tricks.
    if (!METADATA_KEY.test(key) || key.startsWith("$") || key === "__proto__") throw new DomainError("invalid_argument", "metadata keys are 1 to 64 of A-Z a-z 0-9 _ . : / -");
    if (value.length > 256 || /\p{Cc}/u.test(value)) throw new DomainError("invalid_argument", "metadata values are at most 256 characters without control characters");
    out[key] = value;
  }
  return out;
}

/** A ListApiKeys page token: where the last page ended (createdAt, id), opaque to clients. */
export function encodeKeyPageToken(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.getTime()}.${id}`, "utf8").toString("base64url");
}

export function decodeKeyPageToken(token: string | undefined): { createdAt: Date; id: string } | undefined {
  if (token === undefined || token === "") return undefined;
  const text = /^[A-Za-z0-9_-]{1,64}$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  const match = /^(\d{1,15})\.([0-9A-Za-z]{16})$/.exec(text);
  if (!match) throw new DomainError("invalid_argument", "page token is malformed");
  return { createdAt: new Date(Number(match[1])), id: match[2]! };
}
