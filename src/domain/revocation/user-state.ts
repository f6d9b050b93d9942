import type { UserRecord, UsersStore } from "../users/user-record.ts";
import type { UserProfile, UserProfiles } from "../users/user-profile.ts";
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
    deps.revocations.learnUser(userId, state, user);
    return deps.revocations.userState(userId) ?? state;
  };
}

/**
 * Users' profiles (WhoAmI, GetTokenInfo) from the revocation cache, which every instance keeps within a
 * second of the database; the database is read only for a user the cache does not know yet (created on
 * another instance since the last read), whom the cache then learns.
 */
export function createUserProfiles(deps: {
  revocations: RevocationCache;
  users: Pick<UsersStore, "findById">;
  /** Whether the user's MFA is on, from the database (only on a miss). */
  mfaEnabled: (userId: string) => Promise<boolean>;
}): UserProfiles {
  return {
    async get(userId) {
      const cached = deps.revocations.userProfile(userId);
      if (cached) return cached;
      const [user, mfaEnabled] = await Promise.all([deps.users.findById(userId), deps.mfaEnabled(userId)]);
      if (!user) return undefined;
      deps.revocations.learnUser(userId, { role: user.role, disabled: user.disabled }, user, mfaEnabled);
      return deps.revocations.userProfile(userId) ?? profileOf(user, mfaEnabled);
    },
  };
}

/** A user record's profile (for a record the cache would not take: a role it does not know). */
export function profileOf(user: UserRecord, mfaEnabled: boolean): UserProfile {
  return {
    userId: user._id,
    username: user.username,
    email: user.email,
    role: user.role,
    disabled: user.disabled,
    mfaEnabled,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
    lastLoginAt: user.lastLoginAt,
  };
}
