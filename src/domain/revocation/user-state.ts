import type { UsersStore } from "../users/user-record.ts";
import type { RevocationCache, UserState } from "./revocation-cache.ts";

/** A user's current role and disabled flag; undefined for a user that does not exist. */
export type UserStateReader = (userId: string) => Promise<UserState | undefined>;

/**
 * Reads a user's state from the revocation cache (kept within a second of the database by every
 * instance), and from the database only for a user the cache does not know yet (created on another
 * instance since the last poll), whom the cache then learns.
 */
export function createUserStateReader(deps: { revocations: RevocationCache; users: Pick<UsersStore, "findById"> }): UserStateReader {
  return async (userId) => {
    const cached = deps.revocations.userState(userId);
    if (cached) return cached;
    const user = await deps.users.findById(userId);
    if (!user) return undefined;
    const state = { role: user.role, disabled: user.disabled };
    deps.revocations.noteUserChanged(userId, state);
    return state;
  };
}
