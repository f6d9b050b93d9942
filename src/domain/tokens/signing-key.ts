import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";

/** A JWT signing key pair; the public half is published in the JWKS. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: "EdDSA";
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
  readonly createdAt: string;
}

/**
 * Where this instance keeps its signing keys (the key file, src/keys/keyring.ts): a rotated key is written
 * there before it signs anything, so that it survives a crash.
 */
export interface SigningKeyFile {
  /** The keys in the file now, newest first (another process sharing the file may have rotated). */
  read(): Promise<readonly SigningKey[]>;
  /** Adds `key` as the newest (atomically); resolves with the file's keys, newest first. */
  append(key: SigningKey): Promise<readonly SigningKey[]>;
}

/** A new Ed25519 signing key whose kid is its RFC 7638 thumbprint. */
export async function createSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    kid,
    alg: "EdDSA",
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: "EdDSA", use: "sig" },
    publicJwk: { ...publicJwk, kid, alg: "EdDSA", use: "sig" },
    createdAt: new Date().toISOString(),
  };
}
