import type { Role } from "../permissions.ts";

/**
 * What an instance serves about a user without asking the database (WhoAmI, GetTokenInfo): the public
 * fields of the user record and whether MFA is on. Never a secret: no password hash, no TOTP secret.
 * Kept by the revocation cache, which every instance holds within a second of the database.
 */
export interface UserProfile {
  readonly userId: string;
  readonly username: string;
  readonly email: string | undefined;
  readonly role: Role;
  readonly disabled: boolean;
  readonly mfaEnabled: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly lastLoginAt: Date | undefined;
}

/** The profile fields of a user record, as stored (the revocation cache checks them). */
export interface UserProfileFields {
  readonly username: string;
  readonly email?: string | undefined;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly lastLoginAt?: Date | undefined;
}

/** Users' profiles by id: from memory, and from the database only for a user not known here yet. */
export interface UserProfiles {
  /** The user's profile; undefined for a user that does not exist. */
  get(userId: string): Promise<UserProfile | undefined>;
}
