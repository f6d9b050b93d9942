import { hash } from "node:crypto";
import { ROLE_PERMISSIONS, type Role } from "../permissions.ts";
import type { ApiKeyCache } from "./api-key-cache.ts";
import { unusableReason, type ApiKeyState } from "./api-key-record.ts";
import { createNetworkMatcher } from "./client-networks.ts";
import { parseApiKey, secretMatches } from "./key-format.ts";
import type { UserStateReader } from "../revocation/user-state.ts";

/** Why a presented key was refused. */
export type KeyRejection = "malformed" | "unknown" | "wrong_secret" | "revoked" | "rotated" | "expired" | "owner_disabled" | "network";

export interface VerifiedApiKey {
  readonly state: ApiKeyState;
  readonly ownerRole: Role;
  /** The key's scopes ∩ its owner's current role permissions. */
  readonly permissions: ReadonlySet<string>;
}

export type KeyVerdict = { readonly ok: true; readonly key: VerifiedApiKey } | { readonly ok: false; readonly rejection: KeyRejection; readonly keyId?: string; readonly ownerUserId?: string };

export interface ApiKeyVerifier {
  /**
   * Checks a presented key string. A malformed key (wrong prefix, length, alphabet or checksum) is
   * refused before any lookup; a well-formed one is looked up in the in-process cache (the database only
   * on its first use on this instance). `clientIp` undefined skips the network check.
   */
  verify(value: string, clientIp: string | undefined): Promise<KeyVerdict>;
  /**
   * Re-evaluates a key by id from the cache and its owner's current state, without the secret: for
   * tokens exchanged for the key and for open streams. `clientIp` undefined skips the network check.
   */
  evaluate(keyId: string, clientIp?: string): Promise<KeyVerdict>;
  /** How many presented keys are remembered as matching their stored hash (bounded by `maxMatchedKeys`). */
  readonly matchedKeyCount: number;
}

export function createApiKeyVerifier(deps: {
  prefix: string;
  pepper: Buffer;
  cache: ApiKeyCache;
  /** The owner's current role and disabled flag (the identity layer's revocation cache). */
  userState: UserStateReader;
  now?: () => Date;
  /** Most presented keys remembered as matching. Default 10,000. */
  maxMatchedKeys?: number;
}): ApiKeyVerifier {
  const now = deps.now ?? (() => new Date());
  const maxMatched = deps.maxMatchedKeys ?? 10_000;
  const matchers = new WeakMap<readonly string[], (ip: string) => boolean>();
  const inNetworks = (cidrs: readonly string[], ip: string) => {
    let matcher = matchers.get(cidrs);
    if (!matcher) {
      matcher = createNetworkMatcher(cidrs);
      matchers.set(cidrs, matcher);
    }
    return matcher(ip);
  };

  // One verified key per key state and owner role: the cache replaces a key's state object on every
  // change, so a key used again unchanged costs no new permission set (and keeps its principal, below).
  const verified = new WeakMap<ApiKeyState, VerifiedApiKey>();
  // The stored hash as bytes, decoded once per record.
  const storedHashes = new WeakMap<object, Buffer>();
  const storedHashOf = (state: ApiKeyState) => {
    let bytes = storedHashes.get(state.record);
    if (!bytes) {
      bytes = Buffer.from(state.record.secretHash, "hex");
      storedHashes.set(state.record, bytes);
    }
    return bytes;
  };

  // Keys presented before whose secret matched, by the SHA-256 of the whole key string (the secret itself
  // is never kept), with the stored hash they matched. A key presented again skips the parse (CRC-32 and
  // alphabet checks) and the HMAC — a one-shot SHA-256 costs a seventh of a new HMAC object's digest —
  // and is judged afresh from the cached state on every call like any other, so a revocation, rotation,
  // expiry, disabled owner, role or network change is seen on the next call. Only matches are kept, so
  // garbage and wrong secrets add nothing; insertion order is match order, the oldest evicted first.
  const matched = new Map<string, { keyId: string; secretHash: string }>();
  const rememberMatch = (digest: string, state: ApiKeyState) => {
    if (matched.size >= maxMatched) matched.delete(matched.keys().next().value!);
    matched.set(digest, { keyId: state.record._id, secretHash: state.record.secretHash });
  };

  const judge = async (state: ApiKeyState, clientIp: string | undefined): Promise<KeyVerdict> => {
    const ids = { keyId: state.record._id, ownerUserId: state.record.ownerUserId };
    const unusable = unusableReason(state, now());
    if (unusable) return { ok: false, rejection: unusable, ...ids };
    const owner = await deps.userState(state.record.ownerUserId);
    if (!owner || owner.disabled) return { ok: false, rejection: "owner_disabled", ...ids };
    if (clientIp !== undefined && !inNetworks(state.record.allowedCidrs, clientIp)) return { ok: false, rejection: "network", ...ids };
    const known = verified.get(state);
    if (known?.ownerRole === owner.role) return { ok: true, key: known };
    const rolePermissions: ReadonlySet<string> = ROLE_PERMISSIONS[owner.role];
    const key: VerifiedApiKey = { state, ownerRole: owner.role, permissions: new Set(state.record.scopes.filter((scope) => rolePermissions.has(scope))) };
    verified.set(state, key);
    return { ok: true, key };
  };

  return {
    async verify(value, clientIp) {
      const digest = hash("sha256", value, "base64url");
      const known = matched.get(digest);
      if (known !== undefined) {
        const state = await deps.cache.get(known.keyId);
        // The same record hash the secret matched (a record whose hash changed is checked again).
        if (state !== undefined && state.record.secretHash === known.secretHash) return judge(state, clientIp);
        matched.delete(digest);
      }
      const parsed = parseApiKey(deps.prefix, value);
      if (!parsed) return { ok: false, rejection: "malformed" };
      const state = await deps.cache.get(parsed.keyId);
      if (!state) return { ok: false, rejection: "unknown" };
      if (!secretMatches(deps.pepper, parsed.secret, storedHashOf(state))) {
        return { ok: false, rejection: "wrong_secret", keyId: state.record._id, ownerUserId: state.record.ownerUserId };
      }
      rememberMatch(digest, state);
      return judge(state, clientIp);
    },
    async evaluate(keyId, clientIp) {
      const state = await deps.cache.get(keyId);
      if (!state) return { ok: false, rejection: "unknown" };
      return judge(state, clientIp);
    },
    get matchedKeyCount() {
      return matched.size;
    },
  };
}
