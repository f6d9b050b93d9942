import { randomBytes } from "node:crypto";
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters, type JWTPayload } from "jose";
import type { Role } from "../permissions.ts";
import { DomainError } from "../errors.ts";
import type { SigningKeySet } from "./signing-keys.ts";

/** The claims of a verified access token. Times are seconds since the epoch, as in the JWT. */
export interface AccessTokenClaims {
  /** The user id. */
  sub: string;
  /** The session the token was issued for (exchanged API keys get a session too). */
  sid: string;
  /** The role when the token was issued; the caller checks the user's current role. */
  role: Role;
  permissions: string[];
  /** How the session was authenticated: "password" (login), "refresh" (a rotated refresh token), "api_key" (ExchangeApiKey). */
  amr: "password" | "refresh" | "api_key";
  /** True when the session was established with an MFA code (login or the login it was refreshed from). */
  mfa: boolean;
  /** The API key an exchanged token stands for; present exactly when `amr` is "api_key". */
  keyId?: string;
  jti: string;
  iat: number;
  exp: number;
}

export interface AccessTokenService {
  /**
   * Signs a token with the current signing key. `ttlMs` may shorten the lifetime but never lengthen it
   * past the service's TTL (a retired key verifies only that long); a longer one is a RangeError.
   */
  issue(input: {
    userId: string;
    sessionId: string;
    role: Role;
    permissions: string[];
    amr: "password" | "refresh" | "api_key";
    /** Whether the session was established with an MFA code. */
    mfa?: boolean;
    keyId?: string;
    ttlMs?: number;
  }): Promise<{ token: string; expiresAt: Date; jti: string }>;
  /**
   * Verifies signature (EdDSA only; the kid must be a published, unexpired key), type, issuer, audience,
   * expiry and issue time with leeway, and the shape of every claim. Throws DomainError("unauthenticated",
   * "invalid token") — with reason "credential_expired" for a token that is valid but expired. No
   * database access: keys come from the SigningKeySet's cache.
   */
  verify(token: string): Promise<AccessTokenClaims>;
}

export interface AccessTokenServiceDeps {
  keys: SigningKeySet;
  issuer: string;
  audience: string;
  /** Default lifetime; default 15 minutes. */
  ttlMs?: number;
  /** Clock skew tolerated between instances; default 30 s. */
  leewayMs?: number;
  now?: () => number;
}

/** Tokens are a few hundred bytes; anything near this is not ours, and is refused before parsing. */
export const MAX_ACCESS_TOKEN_BYTES = 8 * 1024;
const MAX_PERMISSIONS = 64;
const MAX_ID_LENGTH = 256;
// RFC 9068's media type: an ID token or another JWT from the same key can't pass as an access token.
const TOKEN_TYPE = "at+jwt";
const ROLES: ReadonlySet<string> = new Set<Role>(["user", "admin", "owner"]);
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Creates the service that issues and verifies this gateway's access tokens (Ed25519-signed JWTs). */
export function createAccessTokenService(deps: AccessTokenServiceDeps): AccessTokenService {
  const now = deps.now ?? Date.now;
  const ttlMs = deps.ttlMs ?? 15 * 60 * 1000;
  const leewaySeconds = Math.ceil((deps.leewayMs ?? 30_000) / 1000);
  const invalid = () => new DomainError("unauthenticated", "invalid token");

  // Unknown, retired-and-expired or non-string kids all fail the same way: jose turns this into a failure.
  const resolveKey = async (header: JWTHeaderParameters) => {
    const key = typeof header.kid === "string" ? await deps.keys.publicKeyOrRefresh(header.kid) : undefined;
    if (!key) throw new errors.JWKSNoMatchingKey();
    return key;
  };

  return {
    async issue(input) {
      const lifetimeMs = input.ttlMs ?? ttlMs;
      if (!(lifetimeMs > 0 && lifetimeMs <= ttlMs)) throw new RangeError(`access token ttl must be in (0, ${ttlMs}] ms`);
      if ((input.amr === "api_key") !== (input.keyId !== undefined)) throw new TypeError("keyId is required with amr api_key, and only then");
      const iat = Math.floor(now() / 1000);
      const exp = iat + Math.max(1, Math.floor(lifetimeMs / 1000));
      const jti = randomBytes(16).toString("base64url");
      const { kid, privateKey } = deps.keys.current();
      const token = await new SignJWT({
        sid: input.sessionId,
        role: input.role,
        permissions: [...input.permissions],
        amr: input.amr,
        ...(input.mfa ? { mfa: true } : {}),
        ...(input.keyId !== undefined ? { keyId: input.keyId } : {}),
      })
        .setProtectedHeader({ alg: "EdDSA", kid, typ: TOKEN_TYPE })
        .setSubject(input.userId)
        .setIssuer(deps.issuer)
        .setAudience(deps.audience)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(jti)
        .sign(privateKey);
      return { token, expiresAt: new Date(exp * 1000), jti };
    },

    async verify(token) {
      if (typeof token !== "string" || token.length > MAX_ACCESS_TOKEN_BYTES || !COMPACT_JWS.test(token)) throw invalid();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, resolveKey, {
          algorithms: ["EdDSA"],
          typ: TOKEN_TYPE,
          issuer: deps.issuer,
          audience: deps.audience,
          clockTolerance: leewaySeconds,
          currentDate: new Date(now()),
          // Also rejects an iat in the future (beyond the leeway) and a token older than any we issue.
          maxTokenAge: Math.ceil(ttlMs / 1000),
          requiredClaims: ["sub", "sid", "role", "permissions", "amr", "jti", "iat", "exp"],
        }));
      } catch (err) {
        // jose checks the signature before the claims, so an expired token here is one we really issued.
        if (err instanceof errors.JWTExpired) throw new DomainError("unauthenticated", "token expired", { reason: "credential_expired" });
        throw invalid();
      }
      const claims = claimsOf(payload);
      if (!claims) throw invalid();
      return claims;
    },
  };
}

/** The claims when every one has the shape we issue, else undefined. */
function claimsOf(payload: JWTPayload): AccessTokenClaims | undefined {
  const { sub, sid, role, permissions, amr, mfa, keyId, jti, iat, exp } = payload;
  if (!isId(sub) || !isId(sid) || !isId(jti)) return undefined;
  if (typeof role !== "string" || !ROLES.has(role)) return undefined;
  if (!Array.isArray(permissions) || permissions.length > MAX_PERMISSIONS || !permissions.every((p) => typeof p === "string" && p.length > 0 && p.length <= 64)) {
    return undefined;
  }
  if (amr !== "password" && amr !== "refresh" && amr !== "api_key") return undefined;
  if (mfa !== undefined && mfa !== true) return undefined;
  if (amr === "api_key" ? !isId(keyId) : keyId !== undefined) return undefined;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp) || (exp as number) <= (iat as number)) return undefined;
  return {
    sub,
    sid,
    role: role as Role,
    permissions: permissions as string[],
    amr,
    mfa: mfa === true,
    ...(amr === "api_key" ? { keyId: keyId as string } : {}),
    jti,
    iat: iat as number,
    exp: exp as number,
  };
}

function isId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH;
}
