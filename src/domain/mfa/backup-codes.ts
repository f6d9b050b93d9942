import { createHmac, hkdfSync, randomInt, timingSafeEqual } from "node:crypto";

/**
 * Single-use backup codes: the way back in when the authenticator is lost. Each is 10 characters of
 * Crockford base32 (50 bits), shown as `xxxxx-xxxxx`. Only an HMAC of each is stored, keyed with a key
 * derived from the server's encryption key, so a copy of the database cannot be brute-forced offline
 * without the keyring.
 */

/** How many codes one generation yields. */
export const BACKUP_CODE_COUNT = 10;

// Crockford base32: digits and letters without I, L, O, U, so nothing reads as something else.
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const CODE_LENGTH = 10;
const HKDF_INFO = "portcullis backup codes";

/**
 * The HMAC key for backup-code hashes, derived (HKDF-SHA-256) from the keyring's encryption key so the
 * key file needs no new entry and the two uses never share a key.
 */
export function deriveBackupCodeKey(encryptionKey: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", encryptionKey, Buffer.alloc(0), HKDF_INFO, 32));
}

/** {@link BACKUP_CODE_COUNT} new random codes, formatted for display (`xxxxx-xxxxx`), all distinct. */
export function generateBackupCodes(): string[] {
  const codes = new Set<string>();
  while (codes.size < BACKUP_CODE_COUNT) {
    let code = "";
    for (let i = 0; i < CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
    codes.add(`${code.slice(0, 5)}-${code.slice(5)}`);
  }
  return [...codes];
}

/**
 * The canonical form of what a user typed: spaces and dashes removed, upper case, and Crockford's
 * look-alikes read as meant (O → 0, I and L → 1). Undefined unless that leaves exactly 10 characters of
 * the alphabet.
 */
export function normalizeBackupCode(input: string): string | undefined {
  if (typeof input !== "string" || input.length > 32) return undefined;
  const code = input.replace(/[ -]/g, "").toUpperCase().replace(/O/g, "0").replace(/[IL]/g, "1");
  return /^[0-9A-HJKMNP-TV-Z]{10}$/.test(code) ? code : undefined;
}

/** The stored form of a code: hex HMAC-SHA-256 of its canonical form. Undefined for input that is no code. */
export function hashBackupCode(key: Buffer, input: string): string | undefined {
  const code = normalizeBackupCode(input);
  return code === undefined ? undefined : createHmac("sha256", key).update(code).digest("hex");
}

/**
 * The index in `hashes` of the one equal to `hash`, or -1. Every entry is compared, in constant time, so
 * the time taken says nothing about which codes exist.
 */
export function findBackupCodeHash(hashes: readonly string[], hash: string): number {
  const wanted = Buffer.from(hash, "hex");
  let found = -1;
  hashes.forEach((candidate, index) => {
    const bytes = Buffer.from(candidate, "hex");
    if (bytes.length === wanted.length && timingSafeEqual(bytes, wanted) && found === -1) found = index;
  });
  return found;
}
