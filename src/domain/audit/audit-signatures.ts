import { CompactSign, compactVerify, decodeProtectedHeader, importJWK, type CryptoKey, type JWK } from "jose";

/** The JWS `typ` of a signed chain head, a retention checkpoint and an export manifest. */
export const HEAD_TYP = "portcullis-audit-head+jws";
export const CHECKPOINT_TYP = "portcullis-audit-checkpoint+jws";
export const MANIFEST_TYP = "portcullis-audit-manifest+jws";

/** Signs JSON statements with the server's current JWT signing key (EdDSA), so the JWKS verifies them. */
export interface StatementSigner {
  sign(typ: string, statement: Record<string, unknown>): Promise<string>;
}

export function createStatementSigner(current: () => { kid: string; privateKey: CryptoKey }): StatementSigner {
  return {
    async sign(typ, statement) {
      const { kid, privateKey } = current();
      return new CompactSign(new TextEncoder().encode(JSON.stringify(statement))).setProtectedHeader({ alg: "EdDSA", kid, typ }).sign(privateKey);
    },
  };
}

/**
 * Verifies a compact JWS made by {@link StatementSigner} against a set of public JWKs (a JWKS, or every
 * key ever published): the `typ` must match and the key is chosen by `kid`. Returns the statement, or
 * a one-line reason it is not valid.
 */
export async function verifyStatement(jws: string, typ: string, keys: readonly JWK[]): Promise<{ ok: true; statement: Record<string, unknown>; kid: string } | { ok: false; problem: string }> {
  let header;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    return { ok: false, problem: "not a compact JWS" };
  }
  if (header.typ !== typ) return { ok: false, problem: `not a ${typ} signature` };
  if (header.alg !== "EdDSA") return { ok: false, problem: "unexpected signature algorithm" };
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, problem: `signed by key ${JSON.stringify(String(header.kid).slice(0, 64))}, which the key set does not contain` };
  try {
    const key = await importJWK({ ...jwk, alg: "EdDSA" }, "EdDSA");
    const { payload } = await compactVerify(jws, key, { algorithms: ["EdDSA"] });
    const statement = JSON.parse(new TextDecoder().decode(payload)) as unknown;
    if (statement === null || typeof statement !== "object" || Array.isArray(statement)) return { ok: false, problem: "the signed statement is not an object" };
    return { ok: true, statement: statement as Record<string, unknown>, kid: String(header.kid) };
  } catch {
    return { ok: false, problem: "the signature does not verify" };
  }
}
