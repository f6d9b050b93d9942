import { createHmac } from "node:crypto";
import { KeyringError, type Keyring } from "./keyring.ts";

/** Where fingerprints are kept; implemented by `src/store/key-fingerprints-store.ts`. */
export interface KeyFingerprints {
  recordOrGet(name: string, fingerprint: string): Promise<string>;
}

/**
 * Instances sharing a database must share the keys that protect what they store: an API key made on
 * one instance is checked against the pepper on another, a TOTP secret sealed on one is opened on
 * another. A mismatch would fail quietly and at random (keys refused, MFA broken on one instance), so
 * it is refused at start instead, naming the variable to set. The fingerprint is an HMAC of a constant
 * under the key: it tells keys apart and reveals nothing about them.
 */
export async function checkSharedKeys(keyring: Keyring, fingerprints: KeyFingerprints): Promise<void> {
  const shared: Array<[name: string, variable: string, key: Buffer]> = [
    ["api_key_pepper", "PORTCULLIS_API_KEY_PEPPER", keyring.apiKeyPepper],
    ["encryption_key", "PORTCULLIS_ENCRYPTION_KEY", keyring.encryptionKey],
  ];
  for (const [name, variable, key] of shared) {
    const mine = createHmac("sha256", key).update(`portcullis key fingerprint: ${name}`).digest("base64url");
    if ((await fingerprints.recordOrGet(name, mine)) !== mine) {
      throw new KeyringError(`${variable} differs from the key of the other instances sharing this database: give every instance the same ${variable} (or the same key file)`);
    }
  }
}
