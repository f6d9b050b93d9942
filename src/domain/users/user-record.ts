import type { Role } from "../permissions.ts";

/**
 * A person who signs in, as stored in the `users` collection. Absent optional fields are absent in the
 * document, never null.
 *
 * - `username`: as the user typed it, NFKC-normalised; `usernameKey`: its case-folded form, unique.
 * - `passwordHash`: an argon2id PHC string; the password itself is never stored or logged.
 * - `updatedAt`: moves with every change (role, disabled, email, password), which is how the revocation
 *   poller notices that a user's sessions must be re-checked.
 * - `passwordChangedAt`: when the password was last set (creation included); a transparent re-hash with
 *   stronger parameters does not move it.
 */
export interface UserRecord {
  _id: string;
  username: string;
  usernameKey: string;
  email?: string;
  role: Role;
  disabled: boolean;
  passwordHash: string;
  createdAt: Date;
  updatedAt: Date;
  lastLoginAt?: Date;
  passwordChangedAt: Date;
}

/** The fields an administrator may change. `email: null` removes the address. */
export interface UserPatch {
  role?: Role;
  disabled?: boolean;
  email?: string | null;
}

/** Filters and paging for {@link UsersStore.list}. */
export interface UserListQuery {
  role?: Role;
  disabled?: boolean;
  pageSize: number;
  /** Only users whose `_id` sorts after this one (the last of the previous page). */
  afterId?: string;
}

/**
 * Where users live; implemented by `src/store/users-store.ts`. Every method takes plain values and
 * builds its own filters, so no caller-supplied object ever reaches the database as a query.
 */
export interface UsersStore {
  /** Rejects with DomainError `already_exists` ("username is taken") when `usernameKey` is in use. */
  insert(user: UserRecord): Promise<void>;
  findById(id: string): Promise<UserRecord | undefined>;
  findByUsernameKey(usernameKey: string): Promise<UserRecord | undefined>;
  /** Up to `pageSize` users matching the filters, in `_id` order. */
  list(query: UserListQuery): Promise<UserRecord[]>;
  /** Owners that are not disabled. */
  countActiveOwners(): Promise<number>;
  /** Whether any owner exists, disabled or not (the bootstrap check and the startup hint). */
  anyOwnerExists(): Promise<boolean>;
  /**
   * Claims the one bootstrap for `userId` (an atomic insert of a fixed-id document). Resolves "claimed",
   * or with the claim another run holds.
   */
  claimBootstrap(userId: string, at: Date): Promise<"claimed" | { userId: string; at: Date }>;
  /** Gives up `userId`'s bootstrap claim (its run failed, or the claim was abandoned). */
  releaseBootstrap(userId: string): Promise<void>;
  /**
   * Claims the identifier `id` ("username:<lookalike key>", "email:<address>") for `userId` by inserting
   * a document with that `_id`: atomic on every database. Resolves "claimed", or with the claim held.
   */
  claimIdentifier(id: string, userId: string, at: Date): Promise<"claimed" | { userId: string; at: Date }>;
  /** Deletes the claim `id` if `userId` holds it. */
  releaseIdentifier(id: string, userId: string): Promise<void>;
  /** Whether anyone holds the claim `id`. */
  hasIdentifierClaim(id: string): Promise<boolean>;
  /**
   * Applies `patch` and always sets `updatedAt` to now. With `expected`, only when the user still has
   * that role and disabled state (an optimistic check against concurrent changes). Resolves to the
   * updated user, or undefined when no user matched. (On FerretDB 1.x a filtered update is not atomic,
   * so `expected` narrows races rather than closing them; callers re-check what must hold afterwards.)
   */
  update(id: string, patch: UserPatch, expected?: { role: Role; disabled: boolean }): Promise<UserRecord | undefined>;
  /**
   * Stores a new password hash and sets `updatedAt`; `passwordChangedAt` is set when given (a new
   * password) and left alone otherwise (a re-hash of the same password).
   */
  setPasswordHash(id: string, passwordHash: string, passwordChangedAt?: Date): Promise<void>;
  /** Sets `lastLoginAt`; deliberately leaves `updatedAt` alone (a login changes nothing the poller watches). */
  touchLastLogin(id: string, at: Date): Promise<void>;
  /** Users whose `updatedAt` is at or after `since`, oldest change first: the revocation poller's feed. */
  findUpdatedSince(since: Date): Promise<UserRecord[]>;
}
