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
}

export function createApiKeyVerifier(deps: {
  prefix: string;
  pepper: Buffer;
  cache: ApiKeyCache;
  /** The owner's current role and disabled flag (the identity layer's revocation cache). */
  userState: UserStateReader;
  now?: () => Date;
}): ApiKeyVerifier {
  const now = deps.now ?? (() => new Date());
  const matchers = new WeakMap<readonly string[], (ip: string) => boolean>();
  const inNetworks = (cidrs: readonly string[], ip: string) => {
    let matcher = matchers.get(cidrs);
    if (!matcher) {
      matcher = createNetworkMatcher(cidrs);
      matchers.set(cidrs, matcher);
    }
    return matcher(ip);
  };

  const judge = async (state: ApiKeyState, clientIp: string | undefined): Promise<KeyVerdict> => {
    const ids = { keyId: state.record._id, ownerUserId: state.record.ownerUserId };
    const unusable = unusableReason(state, now());
    if (unusable) return { ok: false, rejection: unusable, ...ids };
    const owner = await deps.userState(state.record.ownerUserId);
    if (!owner || owner.disabled) return { ok: false, rejection: "owner_disabled", ...ids };
    if (clientIp !== undefined && !inNetworks(state.record.allowedCidrs, clientIp)) return { ok: false, rejection: "network", ...ids };
    const rolePermissions: ReadonlySet<string> = ROLE_PERMISSIONS[owner.role];
    const permissions = new Set(state.record.scopes.filter((scope) => rolePermissions.has(scope)));
    return { ok: true, key: { state, ownerRole: owner.role, permissions } };
  };

  return {
    async verify(value, clientIp) {
      const parsed = parseApiKey(deps.prefix, value);
      if (!parsed) return { ok: false, rejection: "malformed" };
      const state = await deps.cache.get(parsed.keyId);
      if (!state) return { ok: false, rejection: "unknown" };
      if (!secretMatches(deps.pepper, parsed.secret, Buffer.from(state.record.secretHash, "hex"))) {
        return { ok: false, rejection: "wrong_secret", keyId: state.record._id, ownerUserId: state.record.ownerUserId };
      }
      return judge(state, clientIp);
    },
    async evaluate(keyId, clientIp) {
      const state = await deps.cache.get(keyId);
      if (!state) return { ok: false, rejection: "unknown" };
      return judge(state, clientIp);
    },
  };
}
