import { DomainError } from "../errors.ts";

/** Page size when the caller asks for none (or 0). */
export const DEFAULT_PAGE_SIZE = 50;
/** Largest page returned; a larger request is clamped to it, as common.proto promises. */
export const MAX_PAGE_SIZE = 500;

const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The page size to use, by the rule of common.proto: absent or 0 → `defaultSize`; above `maxSize` →
 * `maxSize` (clamped, not refused); negative or fractional → `invalid_argument`.
 */
export function resolvePageSize(requested: number | undefined, limits: { defaultSize: number; maxSize: number } = { defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE }): number {
  if (requested === undefined || requested === 0) return limits.defaultSize;
  if (!Number.isInteger(requested) || requested < 0) throw new DomainError("invalid_argument", "page_size must not be negative");
  return Math.min(requested, limits.maxSize);
}

/**
 * Page tokens are opaque to clients: base64url of where the previous page ended (ListUsers: the last
 * user id). Only the encoding is hidden — a token names nothing its caller cannot already see.
 */
export function encodePageToken(position: string): string {
  return Buffer.from(position, "utf8").toString("base64url");
}

/**
 * The position a token continues after, which must match `position` (by default a user id); absent or
 * empty means the first page; anything malformed is `invalid_argument`.
 */
export function decodePageToken(token: string | undefined, position: RegExp = USER_ID): string | undefined {
  if (token === undefined || token === "") return undefined;
  const decoded = typeof token === "string" && /^[A-Za-z0-9_-]{1,128}$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  if (!position.test(decoded)) throw new DomainError("invalid_argument", "page token is malformed");
  return decoded;
}
