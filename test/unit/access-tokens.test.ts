import { createHmac } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base64url, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { createAccessTokenService, type AccessTokenService } from "../../src/domain/tokens/access-tokens.ts";
import { createSigningKeySet, type SigningKeySet } from "../../src/domain/tokens/signing-keys.ts";
import { loadOrCreateKeyring, signingKeyFile, type Keyring } from "../../src/keys/keyring.ts";
import { createSigningKeysStore } from "../../src/store/signing-keys-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

const ISSUER = "https://portcullis.test";
const AUDIENCE = "portcullis-api";
const TTL_MS = 15 * 60 * 1000;
const LEEWAY_MS = 30 * 1000;

describe("access tokens", () => {
  let dir: string;
  let clock: number;
  let keyring: Keyring;
  let keys: SigningKeySet;
  let service: AccessTokenService;
  const now = () => clock;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-at-"));
    clock = Date.now();
    await database.store.db.collection("signing_keys").deleteMany({});
    keyring = await loadOrCreateKeyring(join(dir, "keys.json"));
    keys = await createSigningKeySet({
      keys: keyring.signingKeys,
      keyFile: signingKeyFile(join(dir, "keys.json")),
      store: createSigningKeysStore(database.store),
      accessTokenTtlMs: TTL_MS,
      leewayMs: LEEWAY_MS,
      now,
    });
    service = createAccessTokenService({ keys, issuer: ISSUER, audience: AUDIENCE, ttlMs: TTL_MS, leewayMs: LEEWAY_MS, now });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const issueDefault = () => service.issue({ userId: "u-1", sessionId: "s-1", role: "admin", permissions: ["ai.query", "keys.read"], amr: "password" });

  /** Signs arbitrary claims with this instance's real private key, as a bug or a stolen key could. */
  async function signWithLocalKey(claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
    const { kid, privateKey } = keys.current();
    return new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid, typ: "at+jwt", ...header }).sign(privateKey);
  }

  function validClaims(): JWTPayload {
    const iat = Math.floor(clock / 1000);
    return { sub: "u-1", sid: "s-1", role: "user", permissions: ["ai.query"], amr: "password", jti: "j-1", iat, exp: iat + 60, iss: ISSUER, aud: AUDIENCE };
  }

  async function expectInvalid(token: string, reason?: string): Promise<void> {
    const error = await service.verify(token).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: "unauthenticated", reason });
    if (reason === undefined) expect((error as DomainError).message).toBe("invalid token");
  }

  it("issues a token that verifies to exactly the claims it was issued with", async () => {
    const issued = await service.issue({ userId: "u-1", sessionId: "s-1", role: "admin", permissions: ["ai.query", "keys.read"], amr: "api_key", keyId: "k-9" });
    const claims = await service.verify(issued.token);
    const iat = Math.floor(clock / 1000);
    expect(claims).toEqual({
      sub: "u-1",
      sid: "s-1",
      role: "admin",
      permissions: ["ai.query", "keys.read"],
      amr: "api_key",
      mfa: false,
      keyId: "k-9",
      jti: issued.jti,
      iat,
      exp: iat + TTL_MS / 1000,
    });
    expect(issued.expiresAt.getTime()).toBe((iat + TTL_MS / 1000) * 1000);

    const password = await service.verify((await issueDefault()).token);
    expect(password).not.toHaveProperty("keyId");
    expect(password.amr).toBe("password");
    const refreshedWithMfa = await service.verify((await service.issue({ userId: "u-1", sessionId: "s-1", role: "user", permissions: [], amr: "refresh", mfa: true })).token);
    expect(refreshedWithMfa).toMatchObject({ amr: "refresh", mfa: true });

    const header = JSON.parse(Buffer.from(issued.token.split(".")[0]!, "base64url").toString("utf8"));
    expect(header).toEqual({ alg: "EdDSA", kid: keys.current().kid, typ: "at+jwt" });
  });

  it("gives every token its own jti and refuses lifetimes beyond the configured TTL", async () => {
    const a = await issueDefault();
    const b = await issueDefault();
    expect(a.jti).not.toBe(b.jti);
    const short = await service.issue({ userId: "u-1", sessionId: "s-1", role: "user", permissions: [], amr: "password", ttlMs: 60_000 });
    expect(short.expiresAt.getTime() - Math.floor(clock / 1000) * 1000).toBe(60_000);
    await expect(service.issue({ userId: "u-1", sessionId: "s-1", role: "user", permissions: [], amr: "password", ttlMs: TTL_MS + 1 })).rejects.toThrow(RangeError);
  });

  it("rejects malformed and truncated strings", async () => {
    const { token } = await issueDefault();
    for (const bad of ["", "abc", "a.b", "a.b.c", "a.b.c.d", token.slice(0, -3), token.slice(0, token.lastIndexOf(".")), `${token}.`, ` ${token}`, token.replace(".", "..")]) {
      await expectInvalid(bad);
    }
  });

  it("rejects a 10 KB token before parsing it", async () => {
    const resolve = vi.spyOn(keys, "publicKey");
    const header = base64url.encode(JSON.stringify({ alg: "EdDSA", kid: keys.current().kid, typ: "at+jwt" }));
    const payload = base64url.encode(JSON.stringify({ ...validClaims(), pad: "x".repeat(10 * 1024) }));
    await expectInvalid(`${header}.${payload}.${base64url.encode("sig")}`);
    expect(resolve).not.toHaveBeenCalled();
  });

  it('rejects alg "none"', async () => {
    const payload = base64url.encode(JSON.stringify(validClaims()));
    for (const header of [{ alg: "none" }, { alg: "none", typ: "at+jwt", kid: keys.current().kid }]) {
      const encoded = base64url.encode(JSON.stringify(header));
      await expectInvalid(`${encoded}.${payload}.`);
      await expectInvalid(`${encoded}.${payload}.${base64url.encode("x")}`);
    }
  });

  it("rejects HS256 signed with the public key (algorithm confusion)", async () => {
    const { kid } = keys.current();
    const jwk = keys.jwks().keys.find((k) => k.kid === kid)!;
    const secrets = [Buffer.from(jwk.x!, "base64url"), Buffer.from(JSON.stringify(jwk)), Buffer.from(jwk.x!)];
    for (const secret of secrets) {
      const token = await new SignJWT(validClaims()).setProtectedHeader({ alg: "HS256", kid, typ: "at+jwt" }).sign(new Uint8Array(secret));
      await expectInvalid(token);
    }
    // Hand-made too, in case a library refused to produce it.
    const signingInput = `${base64url.encode(JSON.stringify({ alg: "HS256", kid, typ: "at+jwt" }))}.${base64url.encode(JSON.stringify(validClaims()))}`;
    await expectInvalid(`${signingInput}.${createHmac("sha256", secrets[0]!).update(signingInput).digest("base64url")}`);
  });

  it("rejects an unknown kid, a missing kid, and another key posing under a published kid", async () => {
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const sign = (header: Record<string, unknown>) => new SignJWT(validClaims()).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", ...header }).sign(privateKey);
    await expectInvalid(await sign({ kid: "not-a-published-kid" }));
    await expectInvalid(await sign({}));
    await expectInvalid(await sign({ kid: keys.current().kid }));
    // And the same claims signed by the real key pass, so the rejections above are the key's doing.
    await expect(service.verify(await signWithLocalKey(validClaims()))).resolves.toMatchObject({ sub: "u-1" });
  });

  it("rejects a payload changed after signing", async () => {
    const { token } = await service.issue({ userId: "u-1", sessionId: "s-1", role: "user", permissions: ["ai.query"], amr: "password" });
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    for (const change of [{ role: "owner" }, { sub: "u-2" }, { exp: claims.exp + 3600 }, { permissions: ["system.emergency"] }]) {
      await expectInvalid(`${header}.${base64url.encode(JSON.stringify({ ...claims, ...change }))}.${signature}`);
    }
  });

  it("rejects a wrong issuer, audience or token type", async () => {
    const other = (issuer: string, audience: string) => createAccessTokenService({ keys, issuer, audience, ttlMs: TTL_MS, leewayMs: LEEWAY_MS, now });
    const input = { userId: "u-1", sessionId: "s-1", role: "user" as const, permissions: [], amr: "password" as const };
    await expectInvalid((await other("https://evil.test", AUDIENCE).issue(input)).token);
    await expectInvalid((await other(ISSUER, "another-api").issue(input)).token);
    await expectInvalid(await signWithLocalKey(validClaims(), { typ: "JWT" }));
  });

  it("rejects claims of the wrong shape even when properly signed", async () => {
    const base = validClaims();
    const variants: JWTPayload[] = [
      { ...base, role: "superuser" },
      { ...base, sid: "" },
      { ...base, sid: undefined },
      { ...base, sub: undefined },
      { ...base, jti: undefined },
      { ...base, permissions: "ai.query" as never },
      { ...base, permissions: [1] as never },
      { ...base, permissions: Array.from({ length: 65 }, (_, i) => `p${i}`) },
      { ...base, amr: "sms" },
      { ...base, amr: "api_key" }, // without keyId
      { ...base, keyId: "k-1" }, // keyId on a password token
      { ...base, iat: base.iat! + 3600, exp: base.iat! + 3660 }, // issued in the future
      { ...base, exp: base.iat! + TTL_MS / 1000 + 3600 }, // fine exp, but older than any token we issue later
    ];
    await expect(service.verify(await signWithLocalKey(base))).resolves.toMatchObject({ role: "user" });
    for (const claims of variants.slice(0, -1)) await expectInvalid(await signWithLocalKey(claims));
    // The last one: a token older than the TTL is refused as expired even if its exp says otherwise.
    const old = await signWithLocalKey(variants.at(-1)!);
    clock += TTL_MS + LEEWAY_MS + 60_000;
    await expectInvalid(old, "credential_expired");
  });

  it("refuses an expired token with reason credential_expired, but accepts it within the leeway", async () => {
    const { token, expiresAt } = await issueDefault();
    clock = expiresAt.getTime() + LEEWAY_MS - 2_000;
    await expect(service.verify(token)).resolves.toMatchObject({ sub: "u-1" });
    clock = expiresAt.getTime() + LEEWAY_MS + 1_000;
    await expectInvalid(token, "credential_expired");
  });

  it("accepts a retired key until its verifyUntil and never after", async () => {
    const oldKid = keys.current().kid;
    const oldKey = keyring.signingKeys[0]!;
    const oldPrivate = (await importJWK(oldKey.privateJwk, "EdDSA")) as CryptoKey;
    const issuedBefore = await issueDefault();

    await keys.rotate();
    expect(keys.current().kid).not.toBe(oldKid);
    const retired = await database.store.db.collection("signing_keys").findOne({ _id: oldKid as never });
    const verifyUntil = (retired!["verifyUntil"] as Date).getTime();
    expect(verifyUntil).toBe(clock + TTL_MS + LEEWAY_MS);

    await expect(service.verify(issuedBefore.token)).resolves.toMatchObject({ sub: "u-1" });
    // A fresh token from the retired key (as a leaked key file would make): fine before verifyUntil…
    clock = verifyUntil - 5_000;
    const freshFromOldKey = () => {
      const iat = Math.floor(clock / 1000);
      return new SignJWT({ ...validClaims(), iat, exp: iat + 60 }).setProtectedHeader({ alg: "EdDSA", kid: oldKid, typ: "at+jwt" }).sign(oldPrivate);
    };
    await expect(service.verify(await freshFromOldKey())).resolves.toMatchObject({ sub: "u-1" });
    // …refused after it, although not expired itself, and with no refresh in between.
    clock = verifyUntil + 1;
    await expectInvalid(await freshFromOldKey());
    // The new key works throughout.
    await expect(service.verify((await issueDefault()).token)).resolves.toMatchObject({ sub: "u-1" });
  });

  it("publishes a JWKS with public members only", async () => {
    await keys.rotate();
    const jwks = keys.jwks();
    expect(jwks.keys).toHaveLength(2);
    for (const key of jwks.keys) {
      expect(Object.keys(key).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
      expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
      expect(key).not.toHaveProperty("d");
    }
    const json = JSON.stringify(jwks);
    for (const key of (await loadOrCreateKeyring(join(dir, "keys.json"))).signingKeys) expect(json).not.toContain(String(key.privateJwk.d));
    // A standard verifier with nothing but the JWKS accepts our tokens.
    const { token } = await issueDefault();
    const { createLocalJWKSet, jwtVerify } = await import("jose");
    await expect(jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: AUDIENCE, currentDate: new Date(clock) })).resolves.toBeTruthy();
  });

  it("never reads a private member from the database into the JWKS", async () => {
    const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const { calculateJwkThumbprint } = await import("jose");
    const kid = await calculateJwkThumbprint(publicJwk);
    // A careless writer stored the private JWK: it is ignored, not trusted and not republished.
    await database.store.db.collection("signing_keys").insertOne({ _id: kid as never, publicJwk: { ...(await exportJWK(privateKey)), kid }, createdAt: new Date() });
    // And one whose key does not match its kid.
    await database.store.db.collection("signing_keys").insertOne({ _id: "forged-kid" as never, publicJwk: { ...publicJwk, kid: "forged-kid" }, createdAt: new Date() });
    await keys.refresh();
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([keys.current().kid]);
    expect(keys.publicKey(kid)).toBeUndefined();
    expect(keys.publicKey("forged-kid")).toBeUndefined();
  });
});
