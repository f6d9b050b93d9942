import { createSignedPageTokens, type SignedPageTokens } from "../crypto/signed-page-token.ts";

/** Where a page ends: the last seq returned, the order, and what the cursor is bound to. */
export interface AuditCursor {
  readonly seq: number;
  readonly order: "asc" | "desc";
}

/** Audit query page tokens, bound to the filter and, for ListMyAuditEvents, the caller (see signed-page-token.ts). */
export type AuditCursorCodec = SignedPageTokens<AuditCursor>;

export function createAuditCursorCodec(key: Uint8Array): AuditCursorCodec {
  return createSignedPageTokens<AuditCursor>(key, {
    pack: (cursor) => ({ s: cursor.seq, o: cursor.order }),
    unpack: ({ s, o }) => (typeof s === "number" && Number.isSafeInteger(s) && s >= 0 && (o === "asc" || o === "desc") ? { seq: s, order: o } : undefined),
  });
}
