import { ALL_PERMISSIONS } from "../permissions.ts";
import { DomainError } from "../errors.ts";
import type { TokenBudgetSettings } from "./api-key-record.ts";

/** What a caller may write into a key: checked here, once, for create, update and revoke alike. */

const MAX_NAME_LENGTH = 100;
const MAX_REASON_LENGTH = 500;
const MAX_METADATA_ENTRIES = 32;
// Metadata keys become field names of the stored key document, where MongoDB reads "." as a path
// separator and a leading "$" as an operator: neither is in the alphabet, so such a key is refused up
// front (INVALID_ARGUMENT) instead of failing in the database (INTERNAL).
const METADATA_KEY = /^[A-Za-z0-9_:/-]{1,64}$/;
// Budgets above this are no budget at all; the bound keeps them exact as JavaScript numbers.
const MAX_TOKEN_BUDGET = 1e15;

/** A budget change: a positive number sets it, 0 removes it, undefined leaves it. */
export interface TokenBudgetChange {
  readonly perDay?: number | undefined;
  readonly perMonth?: number | undefined;
}

export function checkName(raw: string): string {
  const name = raw.normalize("NFC").trim();
  if (name.length === 0 || [...name].length > MAX_NAME_LENGTH) throw new DomainError("invalid_argument", `name must be 1 to ${MAX_NAME_LENGTH} characters`);
  if (/\p{Cc}|\p{Cf}/u.test(name)) throw new DomainError("invalid_argument", "name must not contain control characters");
  return name;
}

/** Applies a budget change: positive sets, 0 removes (only when updating), anything else is INVALID_ARGUMENT. */
export function checkBudget(current: TokenBudgetSettings, change: TokenBudgetChange, updating: boolean): TokenBudgetSettings {
  const next: { perDay?: number; perMonth?: number } = { ...current };
  for (const [field, label] of [
    ["perDay", "daily_token_budget"],
    ["perMonth", "monthly_token_budget"],
  ] as const) {
    const value = change[field];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0 || (value === 0 && !updating) || value > MAX_TOKEN_BUDGET) {
      throw new DomainError("invalid_argument", `${label} must be a positive whole number${updating ? " (0 removes it)" : ""}`);
    }
    if (value === 0) delete next[field];
    else next[field] = value;
  }
  return next;
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
    // Keys become document field names: no "." or "$" (see METADATA_KEY), no prototype tricks.
    if (!METADATA_KEY.test(key) || key === "__proto__")
      throw new DomainError("invalid_argument", `metadata key ${JSON.stringify(key.slice(0, 64))} is not 1 to 64 of A-Z a-z 0-9 _ : / - (no "." or "$")`);
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
