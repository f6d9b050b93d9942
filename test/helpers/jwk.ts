import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

/** A fresh Ed25519 key pair with a kid, for signatures the gateway did not make. */
export async function createKeyPair(): Promise<{ publicJwk: JWK; privateKey: CryptoKey }> {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  return { publicJwk: { ...(await exportJWK(publicKey)), kid: "someone-else", alg: "EdDSA" }, privateKey };
}
