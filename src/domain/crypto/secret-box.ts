import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from "node:crypto";

/**
 * Authenticated encryption for secrets kept at rest (TOTP secrets, later provider credentials), so a copy
 * of the database alone reveals none of them.
 */
export interface SecretBox {
  /**
   * Encrypts `plaintext` and returns a self-describing string `v1.<iv>.<ciphertext>.<tag>` (base64url
   * parts; a fresh random 96-bit IV each time, so sealing the same plaintext twice gives different
   * strings). `context` names the record the secret belongs to (e.g. `totp:<userId>`) and is bound as
   * additional authenticated data: it is not stored, and the ciphertext opens only under the same context,
   * so one moved onto another record is useless.
   */
  seal(plaintext: string, context: string): string;
  /**
   * Decrypts what {@link SecretBox.seal} returned. Throws a plain `Error` — an internal failure, not a
   * `DomainError` — when the string is malformed or tampered with, or the key or context differs. The
   * message never contains the sealed value or the plaintext.
   */
  open(sealed: string, context: string): string;
}

const VERSION = "v1";
const ALGORITHM = "aes-256-gcm";
const KEY_BYTES = 32;
// 96 bits is the IV length GCM is designed for; random IVs stay safe far beyond the number of secrets we seal.
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A {@link SecretBox} using AES-256-GCM under `key` (32 bytes, e.g. the keyring's `encryptionKey`).
 * Throws at once for a key of another length rather than failing on first use.
 */
export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== KEY_BYTES) throw new Error(`secret box key must be ${KEY_BYTES} bytes, got ${key.length}`);
  // A KeyObject copies the bytes: later changes to the caller's buffer cannot alter or reveal our key.
  const secretKey: KeyObject = createSecretKey(Buffer.from(key));

  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, secretKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, "utf8"));
      const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return [VERSION, iv, ciphertext, cipher.getAuthTag()].map((part) => (typeof part === "string" ? part : part.toString("base64url"))).join(".");
    },

    open(sealed, context) {
      const parts = sealed.split(".");
      if (parts.length !== 4 || parts[0] !== VERSION) throw new Error("secret box: not a sealed value of a known version");
      const [iv, ciphertext, tag] = parts.slice(1).map(decodeCanonical);
      if (!iv || !ciphertext || !tag || iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
        throw new Error("secret box: malformed sealed value");
      }
      // authTagLength pins the tag to 16 bytes: GCM would otherwise accept a truncated (weaker) tag.
      const decipher = createDecipheriv(ALGORITHM, secretKey, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
      } catch {
        // Deliberately one message for all three causes: telling them apart would help an attacker, not us.
        throw new Error("secret box: cannot open (tampered, wrong key or wrong context)");
      }
    },
  };
}

/**
 * Base64url-decodes `part`, or undefined unless it is the canonical encoding of its bytes. Node's decoder
 * skips invalid characters and ignores trailing bits, so without this check several strings would open to
 * the same value.
 */
function decodeCanonical(part: string): Buffer | undefined {
  const bytes = Buffer.from(part, "base64url");
  return bytes.toString("base64url") === part ? bytes : undefined;
}
