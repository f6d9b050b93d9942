import { hkdfSync, randomBytes } from "node:crypto";
import { createSecretBox, type SecretBox } from "../crypto/secret-box.ts";

/** A provider secret at rest: encrypted under its own data key, which is wrapped under a versioned key-encryption key. */
export interface SealedSecret {
  /** The version of the key-encryption key `wrappedKey` is wrapped under. */
  readonly keyVersion: number;
  /** The data key, AES-256-GCM under the version's key-encryption key. */
  readonly wrappedKey: string;
  /** The secret, AES-256-GCM under the data key. */
  readonly ciphertext: string;
}

/** What a sealed secret is bound to: opening it under any other id or provider fails. */
export interface SecretOwner {
  readonly id: string;
  readonly provider: string;
}

/**
 * Envelope encryption of provider credentials. Each secret gets a fresh random 256-bit data key; the
 * record's id and provider are the additional authenticated data of both layers, so a ciphertext or a
 * wrapped key copied onto another record does not open. Key-encryption keys are derived with HKDF-SHA256
 * from the server's encryption key (PORTCULLIS_ENCRYPTION_KEY) and a version number: rotation re-wraps
 * each data key under a higher version in memory, never touching the secret's ciphertext and never
 * writing a plaintext anywhere. Every instance derives every version from the same master key, so an
 * instance still configured with the old version opens secrets wrapped under the new one.
 */
export interface CredentialEnvelope {
  seal(secret: string, owner: SecretOwner, keyVersion: number): SealedSecret;
  /** Throws (a plain Error, no secret in it) when the record was tampered with or the key differs. */
  open(sealed: SealedSecret, owner: SecretOwner): string;
  /** The same secret under `keyVersion`; checks that the secret opens first. */
  rewrap(sealed: SealedSecret, owner: SecretOwner, keyVersion: number): SealedSecret;
}

const SALT = Buffer.from("portcullis provider credentials", "utf8");

export function createCredentialEnvelope(masterKey: Buffer): CredentialEnvelope {
  const master = Buffer.from(masterKey);
  const keks = new Map<number, SecretBox>();
  const kek = (version: number) => {
    if (!Number.isInteger(version) || version < 1) throw new Error("credential envelope: bad key version");
    let box = keks.get(version);
    if (!box) {
      box = createSecretBox(Buffer.from(hkdfSync("sha256", master, SALT, `kek v${version}`, 32)));
      keks.set(version, box);
    }
    return box;
  };
  const dataContext = (owner: SecretOwner) => `credential:${owner.id}:${owner.provider}`;
  const wrapContext = (owner: SecretOwner, version: number) => `credential-key:${owner.id}:${owner.provider}:v${version}`;
  const unwrap = (sealed: SealedSecret, owner: SecretOwner) => Buffer.from(kek(sealed.keyVersion).open(sealed.wrappedKey, wrapContext(owner, sealed.keyVersion)), "base64");

  return {
    seal(secret, owner, keyVersion) {
      const dataKey = randomBytes(32);
      try {
        return {
          keyVersion,
          wrappedKey: kek(keyVersion).seal(dataKey.toString("base64"), wrapContext(owner, keyVersion)),
          ciphertext: createSecretBox(dataKey).seal(secret, dataContext(owner)),
        };
      } finally {
        dataKey.fill(0);
      }
    },
    open(sealed, owner) {
      const dataKey = unwrap(sealed, owner);
      try {
        return createSecretBox(dataKey).open(sealed.ciphertext, dataContext(owner));
      } finally {
        dataKey.fill(0);
      }
    },
    rewrap(sealed, owner, keyVersion) {
      const dataKey = unwrap(sealed, owner);
      try {
        createSecretBox(dataKey).open(sealed.ciphertext, dataContext(owner));
        return { keyVersion, wrappedKey: kek(keyVersion).seal(dataKey.toString("base64"), wrapContext(owner, keyVersion)), ciphertext: sealed.ciphertext };
      } finally {
        dataKey.fill(0);
      }
    },
  };
}
