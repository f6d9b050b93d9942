import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from "jose";
import { createSigningKey, type SigningKey, type SigningKeyFile } from "./signing-key.ts";

/**
 * The public half of one instance's signing key as published in `signing_keys`. A key without
 * `verifyUntil` is active; a retired key verifies tokens until `verifyUntil` and never after.
 */
export interface PublishedSigningKey {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly createdAt: Date;
  readonly retiredAt?: Date;
  readonly verifyUntil?: Date;
}

/** Where signing keys are published; implemented by `src/store/signing-keys-store.ts`. */
export interface SigningKeysStore {
  /** Publishes a key unless its kid is already there (a published key is never changed or un-retired). */
  publish(key: { kid: string; publicJwk: JWK; createdAt: Date }): Promise<void>;
  /** Marks a key retired; false when it is unknown or already retired (the first retirement stands). */
  retire(kid: string, retiredAt: Date, verifyUntil: Date): Promise<boolean>;
  /** Every published key. */
  list(): Promise<PublishedSigningKey[]>;
}

/**
 * The keys this instance signs access tokens with, and the keys every instance sharing the database has
 * published, which this instance accepts. Only `refresh()` and `rotate()` touch the database: token
 * verification reads the in-memory cache.
 */
export interface SigningKeySet {
  /** The key new tokens are signed with (the newest local key). */
  current(): { kid: string; privateKey: CryptoKey };
  /**
   * The public key for `kid` if it may still verify tokens (published and not past its `verifyUntil`),
   * else undefined. Read from the cache `refresh()` fills, so a key another instance publishes is
   * accepted here only after the next refresh.
   */
  publicKey(kid: string): CryptoKey | undefined;
  /**
   * Like `publicKey`, but a well-formed kid this instance does not know yet (a key another instance
   * published since the last poll — say, one that just started) triggers a refresh first. Refreshes for
   * unknown kids are shared and spaced at least 250 ms apart, so made-up kids cannot hammer the database.
   */
  publicKeyOrRefresh(kid: string): Promise<CryptoKey | undefined>;
  /** The JSON Web Key Set to publish: every key that may still verify tokens, public members only. */
  jwks(): { keys: JWK[] };
  /**
   * Re-reads published keys (called at creation and by a poller). Also rotates the local key once it is
   * older than `rotateAfterMs`, and adopts a newer key from the key file when another process sharing
   * the file retired ours. On failure the previous cache stays in use and the promise rejects.
   */
  refresh(): Promise<void>;
  /**
   * Generates a new key, appends it to the key file (atomically, mode 0600), publishes it and signs with
   * it from then on. The previous key is retired with `verifyUntil` = now + access token TTL + leeway,
   * when the last token it signed has expired. Concurrent calls share one rotation.
   */
  rotate(): Promise<{ kid: string }>;
}

// kids are RFC 7638 thumbprints: 43 base64url characters.
const KID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const UNKNOWN_KID_REFRESH_SPACING_MS = 250;

export interface SigningKeySetDeps {
  /** This instance's signing keys as loaded at start, newest first. */
  keys: readonly SigningKey[];
  /** The file they were loaded from; rotation writes the new key into it. */
  keyFile: SigningKeyFile;
  store: SigningKeysStore;
  /** The longest lifetime of an access token; a retired key verifies for this long plus `leewayMs`. */
  accessTokenTtlMs: number;
  leewayMs: number;
  now?: () => number;
  /** Age at which the local key is replaced. Default 30 days. */
  rotateAfterMs?: number;
}

const DEFAULT_ROTATE_AFTER_MS = 30 * 24 * 60 * 60 * 1000;

interface CachedKey {
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly retired: boolean;
  readonly verifyUntil: number | undefined;
}

/**
 * Publishes this instance's public keys (idempotently), retires every local key but the newest (a
 * rotation interrupted before retiring is finished here), loads every published key, and rotates at once
 * when the newest local key is older than `rotateAfterMs`.
 */
export async function createSigningKeySet(deps: SigningKeySetDeps): Promise<SigningKeySet> {
  const now = deps.now ?? Date.now;
  const rotateAfterMs = deps.rotateAfterMs ?? DEFAULT_ROTATE_AFTER_MS;
  const retireWindowMs = deps.accessTokenTtlMs + deps.leewayMs;

  let local = requireKeys(deps.keys);
  let current = await importSigningKey(local[0]);
  let cache = new Map<string, CachedKey>();
  let rotating: Promise<{ kid: string }> | undefined;
  let unknownKidRefresh: Promise<void> | undefined;
  let lastUnknownKidRefresh = 0;

  const retire = async (kid: string) => {
    const retiredAt = now();
    await deps.store.retire(kid, new Date(retiredAt), new Date(retiredAt + retireWindowMs));
  };

  const publish = (key: SigningKey) => deps.store.publish({ kid: key.kid, publicJwk: publicMembers(key.publicJwk), createdAt: new Date(key.createdAt) });

  const rotate = (): Promise<{ kid: string }> => {
    rotating ??= (async () => {
      // createdAt from our clock, so the schedule and the clock the caller injects agree.
      const key: SigningKey = { ...(await createSigningKey()), createdAt: new Date(now()).toISOString() };
      // The file first: a key that signed tokens must survive a crash. Then publish before signing with
      // it, so that other instances can learn it on their next refresh.
      local = requireKeys(await deps.keyFile.append(key));
      await publish(key);
      const previous = current;
      current = await importSigningKey(key);
      cache.set(key.kid, { publicKey: await importPublicKey(key.publicJwk), publicJwk: publicMembers(key.publicJwk), retired: false, verifyUntil: undefined });
      await retire(previous.kid);
      const old = cache.get(previous.kid);
      if (old) cache.set(previous.kid, { ...old, retired: true, verifyUntil: now() + retireWindowMs });
      return { kid: key.kid };
    })().finally(() => {
      rotating = undefined;
    });
    return rotating;
  };

  const refresh = async () => {
    const next = new Map<string, CachedKey>();
    for (const doc of await deps.store.list()) {
      const verifyUntil = doc.verifyUntil?.getTime();
      if (verifyUntil !== undefined && verifyUntil <= now()) continue;
      const known = cache.get(doc.kid);
      // Importing is the costly part; a key's material never changes under its kid (the kid is its thumbprint).
      const publicKey = known?.publicKey ?? (await importPublished(doc));
      if (!publicKey) continue;
      next.set(doc.kid, { publicKey, publicJwk: { ...publicMembers(doc.publicJwk), kid: doc.kid }, retired: doc.retiredAt !== undefined, verifyUntil });
    }
    cache = next;

    // Another process sharing our key file rotated it: sign with the key it wrote rather than a retired one.
    if (next.get(current.kid)?.retired) {
      const fresh = requireKeys(await deps.keyFile.read());
      const candidate = next.get(fresh[0].kid);
      if (fresh[0].kid !== current.kid && candidate && !candidate.retired) {
        local = fresh;
        current = await importSigningKey(fresh[0]);
      }
    }

    if (now() - Date.parse(local[0].createdAt) >= rotateAfterMs && !next.get(current.kid)?.retired) await rotate();
  };

  // 1. Publish the local public keys; retire the older ones (a no-op when they are retired already).
  for (const key of local) await publish(key);
  for (const key of local.slice(1)) await retire(key.kid);
  // 2. Load every instance's keys, rotating if ours is due.
  await refresh();

  function publicKey(kid: string): CryptoKey | undefined {
    const entry = cache.get(kid);
    if (!entry) return undefined;
    if (entry.verifyUntil !== undefined && entry.verifyUntil <= now()) return undefined;
    return entry.publicKey;
  }

  return {
    current: () => ({ kid: current.kid, privateKey: current.privateKey }),

    publicKey,

    async publicKeyOrRefresh(kid) {
      const known = publicKey(kid);
      if (known || cache.has(kid) || !KID_PATTERN.test(kid)) return known;
      unknownKidRefresh ??= (async () => {
        const wait = lastUnknownKidRefresh + UNKNOWN_KID_REFRESH_SPACING_MS - now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        lastUnknownKidRefresh = now();
        await refresh();
      })().finally(() => (unknownKidRefresh = undefined));
      await unknownKidRefresh.catch(() => undefined);
      return publicKey(kid);
    },

    jwks() {
      const t = now();
      const keys: JWK[] = [];
      for (const entry of cache.values()) {
        if (entry.verifyUntil === undefined || entry.verifyUntil > t) keys.push({ ...entry.publicJwk });
      }
      return { keys };
    },

    refresh,
    rotate,
  };
}

function requireKeys(keys: readonly SigningKey[]): readonly [SigningKey, ...SigningKey[]] {
  if (keys.length === 0) throw new Error("the keyring holds no signing key");
  return keys as readonly [SigningKey, ...SigningKey[]];
}

async function importSigningKey(key: SigningKey): Promise<{ kid: string; privateKey: CryptoKey }> {
  const privateKey = await importJWK(key.privateJwk, "EdDSA");
  if (privateKey instanceof Uint8Array || privateKey.type !== "private") throw new Error(`signing key ${key.kid} is not an Ed25519 private key`);
  return { kid: key.kid, privateKey };
}

async function importPublicKey(jwk: JWK): Promise<CryptoKey> {
  const key = await importJWK(publicMembers(jwk), "EdDSA");
  if (key instanceof Uint8Array || key.type !== "public") throw new Error("not an Ed25519 public key");
  return key;
}

/**
 * The key of a published document, or undefined when it is not a well-formed Ed25519 public key whose
 * thumbprint is its kid: a document that does not match its name is ignored rather than trusted.
 */
async function importPublished(doc: PublishedSigningKey): Promise<CryptoKey | undefined> {
  const jwk = doc.publicJwk;
  if (jwk?.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || "d" in jwk) return undefined;
  try {
    if ((await calculateJwkThumbprint(publicMembers(jwk))) !== doc.kid) return undefined;
    return await importPublicKey(jwk);
  } catch {
    return undefined;
  }
}

/** Only what a verifier needs; a private member (`d`) can never slip into the JWKS or the database. */
function publicMembers(jwk: JWK): JWK {
  const out: JWK = { kty: String(jwk.kty), crv: String(jwk.crv), x: String(jwk.x), alg: "EdDSA", use: "sig" };
  if (typeof jwk.kid === "string") out.kid = jwk.kid;
  return out;
}
