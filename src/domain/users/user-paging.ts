import { DomainError } from "../errors.ts";

/** Page size when the caller asks for none (or 0). */
export const DEFAULT_PAGE_SIZE = 50;
/** Largest page a caller may ask for; more is `invalid_argument` rather than silently less. */
export const MAX_PAGE_SIZE = 500;

const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The page size to use: absent or 0 → 50; negative, fractional or above 500 → `invalid_argument`. */
export function resolvePageSize(requested: number | undefined): number {
  if (requested === undefined || requested === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(requested) || requested < 0 || requested > MAX_PAGE_SIZE) {
    throw new DomainError("invalid_argument", `page size must be from 0 to ${MAX_PAGE_SIZE}`);
  }
  return requested;
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
