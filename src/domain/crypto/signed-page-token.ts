import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { DomainError } from "../errors.ts";
import { hmacKeyOf } from "./hmac-key.ts";

/** Encodes and checks the page tokens of one listing; see {@link createSignedPageTokens}. */
export interface SignedPageTokens<Cursor> {
  encode(cursor: Cursor, scope: Record<string, string>): string;
  /** INVALID_ARGUMENT for anything but a token made here for `scope`. */
  decode(token: string, scope: Record<string, string>): Cursor;
}

/**
 * Opaque, tamper-proof page tokens: `base64url(JSON).base64url(HMAC)`. The JSON holds the cursor's fields
 * and a digest of the listing's scope (its filters and, where the listing is the caller's own, the caller);
 * the HMAC, under a key derived from the shared encryption key so that every instance accepts another's
 * tokens, covers both. So a token cannot be forged, edited, or reused with other filters or by another
 * caller, as common.proto promises. `unpack` validates the fields it is given (undefined: invalid).
 */
export function createSignedPageTokens<Cursor>(
  key: Uint8Array,
  codec: { pack(cursor: Cursor): Record<string, unknown>; unpack(fields: Record<string, unknown>): Cursor | undefined },
): SignedPageTokens<Cursor> {
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
      const payload = Buffer.from(JSON.stringify({ ...codec.pack(cursor), f: scopeDigest(scope) })).toString("base64url");
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
      if (typeof parsed !== "object" || parsed === null) throw invalid();
      const fields = parsed as Record<string, unknown>;
      const cursor = codec.unpack(fields);
      if (cursor === undefined) throw invalid();
      if (fields["f"] !== scopeDigest(scope)) throw new DomainError("invalid_argument", "page_token belongs to a different query");
      return cursor;
    },
  };
}
