import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";
import { hmacKeyOf } from "../crypto/hmac-key.ts";

/**
 * The API key string: `<prefix>_<id>_<secret><checksum>`, for example
 * `sk_4Jq0w7vLk2Zb9XcR_<43 characters><6 characters>`.
 *
 * - `id` (16 base62 characters, ~95 bits) names the key; it is not secret and appears in listings.
 * - `secret` (43 base62 characters) carries 256 random bits; only its HMAC is stored.
 * - `checksum` (6 base62 characters) is the CRC-32 of everything before it, so typos, truncation and
 *   garbage are rejected without a database lookup, and secret scanners can tell a real key from noise.
 */
export interface ParsedApiKey {
  readonly keyId: string;
  readonly secret: string;
}

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LENGTH = 16;
const SECRET_LENGTH = 43; // 62^43 > 2^256
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32

/** Prefixes are short lower-case words so that a key stays one double-clickable token. */
export const API_KEY_PREFIX_PATTERN = /^[a-z][a-z0-9]{0,11}$/;

/** The length of every key with this prefix; parse rejects anything else before looking further. */
export function apiKeyLength(prefix: string): number {
  return prefix.length + 1 + ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH;
}

/** A fresh key id (also used on its own, e.g. for the record's _id). */
export function newKeyId(): string {
  return randomBase62(ID_LENGTH);
}

/** Makes a new key string for `keyId`; the caller stores `hashSecret(secret)` and hands `key` out once. */
export function generateApiKey(prefix: string, keyId: string = newKeyId()): { key: string; keyId: string; secret: string } {
  const secret = randomBase62(SECRET_LENGTH);
  const body = `${prefix}_${keyId}_${secret}`;
  return { key: body + checksumOf(body), keyId, secret };
}

/**
 * Splits a presented key into id and secret, or returns undefined when it is not a well-formed key of
 * this prefix with a correct checksum. Pure and cheap: no database, no secret comparison.
 */
export function parseApiKey(prefix: string, value: string): ParsedApiKey | undefined {
  if (value.length !== apiKeyLength(prefix) || !value.startsWith(`${prefix}_`)) return undefined;
  const idStart = prefix.length + 1;
  const secretStart = idStart + ID_LENGTH + 1;
  if (value[secretStart - 1] !== "_") return undefined;
  const keyId = value.slice(idStart, secretStart - 1);
  const secret = value.slice(secretStart, secretStart + SECRET_LENGTH);
  const checksum = value.slice(secretStart + SECRET_LENGTH);
  if (!isBase62(keyId) || !isBase62(secret) || !isBase62(checksum)) return undefined;
  if (checksumOf(value.slice(0, secretStart + SECRET_LENGTH)) !== checksum) return undefined;
  return { keyId, secret };
}

/** Whether a bearer value is meant as an API key of this prefix (well-formed or not). */
export function looksLikeApiKey(prefix: string, value: string): boolean {
  return value.startsWith(`${prefix}_`);
}

/** The non-secret leading part shown in listings: `<prefix>_<id>`. */
export function displayPrefix(prefix: string, keyId: string): string {
  return `${prefix}_${keyId}`;
}

/**
 * The stored form of a secret: HMAC-SHA-256 under the server's pepper. A slow password hash would add
 * nothing for 256 random bits; the pepper means a stolen database alone cannot confirm a key.
 */
export function hashSecret(pepper: Buffer, secret: string): Buffer {
  return createHmac("sha256", hmacKeyOf(pepper)).update(secret).digest();
}

/** Constant-time comparison of a presented secret with the stored hash. */
export function secretMatches(pepper: Buffer, secret: string, storedHash: Buffer): boolean {
  const presented = hashSecret(pepper, secret);
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash);
}

function checksumOf(body: string): string {
  return toBase62(crc32(body), CHECKSUM_LENGTH);
}

function isBase62(text: string): boolean {
  return /^[0-9A-Za-z]+$/.test(text);
}

function toBase62(value: number, width: number): string {
  let out = "";
  let rest = value;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

// Rejection sampling keeps every character uniform (256 is not a multiple of 62).
function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}
