import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { DomainError } from "../errors.ts";

/** Where a page of jobs ended: the last job's id and creation time (the all-users order needs both). */
export interface JobCursor {
  readonly id: string;
  readonly createdAt: number;
}

/**
 * ListJobs page tokens: `base64url(JSON).base64url(HMAC)`, the HMAC (a key derived from the shared
 * encryption key, so any instance accepts another's tokens) covering the position and a digest of the
 * listing's scope — the caller, the owner selection and the status filter — so a token cannot be forged,
 * edited, or reused with other filters or by another caller, as common.proto promises.
 */
export interface JobPageTokens {
  encode(cursor: JobCursor, scope: Record<string, string>): string;
  /** INVALID_ARGUMENT for anything but a token made for `scope`. */
  decode(token: string, scope: Record<string, string>): JobCursor;
}

export function createJobPageTokens(key: Uint8Array): JobPageTokens {
  const mac = (payload: string) => createHmac("sha256", key).update(payload).digest();
  const digest = (scope: Record<string, string>) =>
    createHash("sha256")
      .update(JSON.stringify(Object.entries(scope).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
      .digest("base64url")
      .slice(0, 22);
  const invalid = () => new DomainError("invalid_argument", "invalid page_token");
  return {
    encode(cursor, scope) {
      const payload = Buffer.from(JSON.stringify({ i: cursor.id, t: cursor.createdAt, f: digest(scope) })).toString("base64url");
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
      const { i, t, f } = (parsed ?? {}) as { i?: unknown; t?: unknown; f?: unknown };
      if (typeof i !== "string" || typeof t !== "number" || !Number.isSafeInteger(t)) throw invalid();
      if (f !== digest(scope)) throw new DomainError("invalid_argument", "page_token belongs to a different query");
      return { id: i, createdAt: t };
    },
  };
}
