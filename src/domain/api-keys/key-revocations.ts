import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { UserStateReader } from "../revocation/user-state.ts";
import { mayActOnUser } from "../users/role-hierarchy.ts";
import type { ApiKeyCache } from "./api-key-cache.ts";
import type { ApiKeysStore, KeyOwnerScope, RevocationTarget } from "./api-keys-store.ts";
import { checkReason } from "./key-input.ts";
import type { ApiKeyView, KeyViews } from "./key-views.ts";

/**
 * Revoking keys: one (the caller's own, or another user's as far as the role hierarchy allows), all of
 * the caller's (or, for an owner, everyone's), and the two revocations without a caller (the automatic
 * response, EmergencyRevoke). A revocation is an insert keyed by the key id, so the first one wins and
 * none is lost; this instance's cache learns it at once, the others within a poll.
 */
export interface ApiKeyRevocations {
  revoke(ctx: RequestContext, keyId: string, reason: string): Promise<ApiKeyView>;
  /**
   * The audit service's automatic response: revokes a key without a caller (the response audits
   * itself, naming the finding). False when the key is unknown or was revoked already.
   */
  revokeForResponse(keyId: string, reason: string): Promise<boolean>;
  revokeAll(ctx: RequestContext, input: { reason: string; allUsers: boolean }): Promise<number>;
  /** EmergencyRevoke's reach: every key of every user, revoked by "emergency"; resolves with how many. */
  revokeEveryKey(reason: string): Promise<number>;
}

export function createKeyRevocations(deps: { store: ApiKeysStore; cache: ApiKeyCache; views: KeyViews; userState: UserStateReader; now: () => Date }): ApiKeyRevocations {
  const { store, cache, now } = deps;
  const keyViews = deps.views;

  const revokeStates = async (ctx: RequestContext, targets: readonly RevocationTarget[], reason: string) => {
    const at = now();
    const revokedBy = ctx.principal.userId;
    const count = await store.revoke(targets, { reason, revokedBy, at });
    for (const t of targets) cache.noteRevocation({ _id: t.keyId, ownerUserId: t.ownerUserId, revokedAt: at, reason, revokedBy });
    return count;
  };

  return {
    async revoke(ctx, keyId, reasonRaw) {
      const reason = checkReason(reasonRaw);
      const state = await keyViews.visibleKey(ctx, keyId);
      const ownerUserId = state.record.ownerUserId;
      if (ownerUserId !== ctx.principal.userId && !mayActOnUser(ctx.principal, { userId: ownerUserId, role: (await deps.userState(ownerUserId))?.role })) {
        keyViews.refuse(ctx, "api_key.revoke", keyId, "your role may not revoke this user's keys");
      }
      if (state.revocation) return (await keyViews.views([state]))[0]!;
      await revokeStates(ctx, [{ keyId, ownerUserId: state.record.ownerUserId }], reason);
      await keyViews.recordChange(ctx, "api_key.revoke", keyId, { reason });
      const after = await store.findState(keyId);
      return (await keyViews.views([after ?? state]))[0]!;
    },

    async revokeForResponse(keyId, reason) {
      if (!/^[0-9A-Za-z]{16}$/.test(keyId)) return false;
      const state = await store.findState(keyId);
      if (!state || state.revocation) return false;
      const at = now();
      const revocation = { _id: keyId, ownerUserId: state.record.ownerUserId, revokedAt: at, reason, revokedBy: "system" };
      const count = await store.revoke([{ keyId, ownerUserId: state.record.ownerUserId }], { reason, revokedBy: "system", at });
      cache.noteRevocation(revocation);
      return count === 1;
    },

    async revokeAll(ctx, input) {
      const reason = checkReason(input.reason);
      if (input.allUsers && ctx.principal.role !== "owner") throw new DomainError("permission_denied", "only an owner may revoke every user's keys");
      const scope: KeyOwnerScope = input.allUsers ? { all: true } : { ownerUserId: ctx.principal.userId };
      const count = await revokeStates(ctx, await store.unrevoked(scope), reason);
      await keyViews.recordChange(ctx, "api_key.revoke_all", undefined, { reason, metadata: { revoked: count, all_users: input.allUsers } });
      return count;
    },

    async revokeEveryKey(reason) {
      const targets = await store.unrevoked({ all: true });
      const at = now();
      const count = await store.revoke(targets, { reason, revokedBy: "emergency", at });
      for (const t of targets) cache.noteRevocation({ _id: t.keyId, ownerUserId: t.ownerUserId, revokedAt: at, reason, revokedBy: "emergency" });
      return count;
    },
  };
}
