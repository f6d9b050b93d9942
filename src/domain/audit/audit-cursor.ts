import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { hmacKeyOf } from "../crypto/hmac-key.ts";
import { DomainError } from "../errors.ts";

/** Where a page ends: the last seq returned, the order, and what the cursor is bound to. */
export interface AuditCursor {
  readonly seq: number;
  readonly order: "asc" | "desc";
}

/**
 * Opaque, tamper-proof page tokens: `base64url(JSON).base64url(HMAC)`. The HMAC (key derived from the
 * shared encryption key, so any instance accepts another's token) covers the position, the order and a
 * digest of the query's scope (filter and, for ListMyAuditEvents, the caller), so a token cannot be
 * forged, edited, or replayed with another filter or by another user.
 */
export interface AuditCursorCodec {
  encode(cursor: AuditCursor, scope: Record<string, string>): string;
  /** Throws `invalid_argument` ("invalid page_token") for anything but a token this codec made for `scope`. */
  decode(token: string, scope: Record<string, string>): AuditCursor;
}

export function createAuditCursorCodec(key: Uint8Array): AuditCursorCodec {
  const hmacKey = hmacKeyOf(key);
  const mac = (payload: string) => createHmac("sha256", hmacKey).update(payload).digest();
  const scopeDigest = (scope: Record<string, string>) =>
    createHash("sha256")
      .update(JSON.stringify(Object.entries(scope).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
      .digest("base64url")
      .slice(0, 22);
  const invalid = () => new DomainError("invalid_argument", "invalid page_token");
  return {
    encode(cursor, scope) {
      const payload = Buffer.from(JSON.stringify({ s: cursor.seq, o: cursor.order, f: scopeDigest(scope) })).toString("base64url");
      return `${payload}.${mac(payload).toString("base64url")}`;
    },
    decode(token, scope) {
      if (token.length > 512) throw invalid();
      const [payload, signature, extra] = token.split(".");
      if (!payload || !signature || extra !== undefined) throw invalid();
      const given = Buffer.from(signature, "base64url");
      const expected = mac(payload);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
      } catch {
        throw invalid();
      }
      const { s, o, f } = (parsed ?? {}) as { s?: unknown; o?: unknown; f?: unknown };
      if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0 || (o !== "asc" && o !== "desc")) throw invalid();
      if (f !== scopeDigest(scope)) throw new DomainError("invalid_argument", "page_token belongs to a different query");
      return { seq: s, order: o };
    },
  };
}
