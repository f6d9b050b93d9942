import { DomainError } from "../errors.ts";

/** Shortest and longest usernames, in code points after normalisation. */
export const MIN_USERNAME_LENGTH = 3;
export const MAX_USERNAME_LENGTH = 64;
/** RFC 5321's limit on a forward path. */
export const MAX_EMAIL_LENGTH = 254;

// NFKC can grow a string (a ligature becomes two letters), but never by a factor this large: anything
// longer is refused before the work of normalising it.
const MAX_RAW_LENGTH = MAX_USERNAME_LENGTH * 8;

const USERNAME_CHARS = /^[\p{L}\p{N}._@-]+$/u;
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const TLD = "(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})";
const EMAIL = new RegExp(`^([A-Za-z0-9!#$%&'*+/=?^_\`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_\`{|}~-]+)*)@((?:${LABEL}\\.)+${TLD})$`);

/** A username as shown (`display`) and as compared (`key`). */
export interface NormalizedUsername {
  /** NFKC-normalised and trimmed; what the user sees. */
  readonly display: string;
  /** `display` case-folded (lower-cased, then NFKC again): unique among users, so "Alice" ≡ "alice" ≡ "ＡＬＩＣＥ". */
  readonly key: string;
}

/**
 * Normalises and validates a username: Unicode NFKC (so full-width "ａｌｉｃｅ" is "alice"), trimmed,
 * 3–64 code points of letters, digits, `.`, `_`, `-` and `@`. Anything else — spaces, control
 * characters, a leading `$`, non-strings — throws DomainError `invalid_argument` with a message that
 * never repeats the input.
 */
export function normalizeUsername(raw: unknown): NormalizedUsername {
  if (typeof raw !== "string") throw new DomainError("invalid_argument", "username is required");
  if (raw.length > MAX_RAW_LENGTH) throw lengthError();
  const display = raw.normalize("NFKC").trim();
  if (display === "") throw new DomainError("invalid_argument", "username is required");
  const length = [...display].length;
  if (length < MIN_USERNAME_LENGTH || length > MAX_USERNAME_LENGTH) throw lengthError();
  if (!USERNAME_CHARS.test(display)) {
    throw new DomainError("invalid_argument", "username may contain only letters, digits and the characters . _ - @");
  }
  return { display, key: display.toLowerCase().normalize("NFKC") };
}

/**
 * Normalises an optional email address: trimmed, at most 254 characters, shaped `local@domain.tld`
 * (ASCII; internationalised domains in their `xn--` form), domain lower-cased. `undefined` or a blank
 * string means "no email" and gives `undefined`; anything malformed throws DomainError `invalid_argument`.
 */
export function normalizeEmail(raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "string") throw new DomainError("invalid_argument", "email must be text");
  if (raw.length > MAX_EMAIL_LENGTH * 4) throw new DomainError("invalid_argument", `email must be at most ${MAX_EMAIL_LENGTH} characters`);
  const trimmed = raw.trim();
  if (trimmed === "") return undefined;
  if (trimmed.length > MAX_EMAIL_LENGTH) throw new DomainError("invalid_argument", `email must be at most ${MAX_EMAIL_LENGTH} characters`);
  const match = EMAIL.exec(trimmed);
  const [, local = "", domain = ""] = match ?? [];
  if (!match || local.length > 64) throw new DomainError("invalid_argument", "email must look like name@example.com");
  return `${local}@${domain.toLowerCase()}`;
}

function lengthError(): DomainError {
  return new DomainError("invalid_argument", `username must be ${MIN_USERNAME_LENGTH} to ${MAX_USERNAME_LENGTH} characters long`);
}
