import { generateSecret, generateSync, verifySync } from "otplib";

/**
 * RFC 6238 time-based one-time passwords with the parameters every authenticator app supports:
 * HMAC-SHA-1, 6 digits, 30-second steps counted from the Unix epoch.
 */

/** The issuer shown by authenticator apps next to the account name. */
export const TOTP_ISSUER = "Portcullis";

const ALGORITHM = "sha1";
const DIGITS = 6;
const PERIOD_SECONDS = 30;
// 20 bytes = 160 bits, the HMAC-SHA-1 block-size recommendation of RFC 4226.
const SECRET_BYTES = 20;
const CODE_PATTERN = /^[0-9]{6}$/;

/** A new random secret of 160 bits, base32-encoded (32 characters, no padding) as authenticator apps expect. */
export function generateTotpSecret(): string {
  return generateSecret({ length: SECRET_BYTES });
}

/**
 * The `otpauth://totp/<issuer>:<accountName>?secret=…&issuer=…` URI an authenticator app scans (Google's
 * Key URI format). Issuer and account name are percent-encoded, a `:` included, so an account name
 * cannot pose as a different issuer. The algorithm, digits and period are spelled out though they are the
 * defaults, for apps that read them.
 */
export function totpUri(options: { secret: string; accountName: string; issuer?: string }): string {
  const issuer = encodeURIComponent(options.issuer ?? TOTP_ISSUER);
  const label = `${issuer}:${encodeURIComponent(options.accountName)}`;
  const secret = encodeURIComponent(options.secret);
  return `otpauth://totp/${label}?secret=${secret}&issuer=${issuer}&algorithm=SHA1&digits=${DIGITS}&period=${PERIOD_SECONDS}`;
}

/**
 * The time step (`floor(unixSeconds / 30)`) whose code `code` is, looking at the step of `nowMs` and
 * one step either side (clock drift and typing time). Undefined when the code matches none of them, or is
 * not exactly six ASCII digits — never an exception for bad input. Callers keep the step to refuse a
 * replay: a code is good once, and only if its step is newer than the last accepted one.
 */
export function matchTotpStep(secret: string, code: string, nowMs: number): number | undefined {
  if (typeof code !== "string" || !CODE_PATTERN.test(code)) return undefined;
  const result = verifySync({
    secret,
    token: code,
    algorithm: ALGORITHM,
    digits: DIGITS,
    period: PERIOD_SECONDS,
    epoch: Math.floor(nowMs / 1000),
    // In seconds: exactly one period either way means the neighbouring steps and no further.
    epochTolerance: PERIOD_SECONDS,
  });
  // The functional API's result type covers HOTP too, which has no time step; TOTP results always carry one.
  return result.valid && "timeStep" in result ? result.timeStep : undefined;
}

/** The code of `secret` for the time step containing `nowMs`; for tests and tools, never for checking. */
export function totpCodeAt(secret: string, nowMs: number): string {
  return generateSync({ secret, algorithm: ALGORITHM, digits: DIGITS, period: PERIOD_SECONDS, epoch: Math.floor(nowMs / 1000) });
}

/** The time step containing `nowMs`. */
export function totpStepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / PERIOD_SECONDS);
}
