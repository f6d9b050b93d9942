import { randomUUID } from "node:crypto";
import { ROLE_ORDER, roleAtLeast, type Role } from "../permissions.ts";
import { auditActorOf } from "../audit/audit-actor.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { StepUpAttempts } from "../auth/step-up-attempts.ts";
import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";
import type { PasswordHasher } from "../passwords/password-hasher.ts";
import type { ClientInfo } from "../principal.ts";
import { createIdentifierClaims, emailClaim, usernameClaim } from "./identifier-claims.ts";
import { normalizeEmail, normalizeUsername } from "./identifiers.ts";
import { mayManageRole } from "./role-hierarchy.ts";
import { decodePageToken, encodePageToken, resolvePageSize } from "./user-paging.ts";
import { createOwnerBootstrap } from "./owner-bootstrap.ts";
import { createUserPasswords, requirePolicy } from "./user-passwords.ts";
import type { UserPatch, UserRecord, UsersStore } from "./user-record.ts";

/**
 * Who performs an account change: the caller (a user, or an API key acting for its owner, named as the
 * audit log names it) and the role it acts with (the user's, or the key owner's).
 */
export type UserActor = Pick<Principal, "kind" | "id" | "userId" | "role" | "displayName">;

export interface CreateUserInput {
  username: string;
  email?: string;
  password: string;
  role: Role;
}

/** An administrator's change; absent fields stay as they are, `email: ""` removes the address. */
export interface UpdateUserInput {
  role?: Role;
  disabled?: boolean;
  email?: string;
}

export interface ListUsersInput {
  role?: Role;
  disabled?: boolean;
  /** 0 or absent: 50. More than 500: 500. Negative: `invalid_argument`. */
  pageSize?: number;
  /** The `nextPageToken` of the previous page; absent or empty for the first. */
  pageToken?: string;
}

export interface UserPage {
  users: UserRecord[];
  /** Absent on the last page. */
  nextPageToken?: string;
}

/**
 * Account rules: who may create and change which users, password changes, password sign-in and the
 * first owner. Every change is audited (never with a password) before it is reported as done.
 */
export interface UsersService {
  /**
   * Creates a user. Only admins and owners create users; nobody grants a role above their own and only
   * an owner creates admins and owners (else `permission_denied`). The password must pass
   * `checkPasswordStrength` (`invalid_argument` with the reason). A username that is taken, or that looks
   * like a taken one (same UTS #39 confusable skeleton, case aside), and an e-mail address another user
   * has (case aside) are `already_exists`: decided by identifier claims, so of concurrent creates
   * exactly one gets an identifier.
   */
  createUser(actor: UserActor, input: CreateUserInput): Promise<UserRecord>;
  /** `not_found` for an unknown id. */
  getUser(id: string): Promise<UserRecord>;
  /** Users in id order, a page at a time (see {@link resolvePageSize}); a malformed token is `invalid_argument`. */
  listUsers(input: ListUsersInput): Promise<UserPage>;
  /**
   * Changes role, disabled state or email. Who may change whom is the role hierarchy
   * ({@link mayManageRole}): an admin changes plain users only (and does not make them admins); an
   * owner changes anyone. Nobody changes their own role. The last active owner cannot be
   * demoted or disabled (`failed_precondition`). A concurrent change to the same user is `aborted`. An
   * e-mail address another user has is `already_exists` (claimed atomically, as on create).
   * Requiring a fresh MFA for promotions (see {@link isPromotion}) is the caller's job.
   */
  updateUser(actor: UserActor, id: string, input: UpdateUserInput): Promise<UserRecord>;
  /**
   * Wrong `current` is `permission_denied`; `next` must pass the policy and differ from `current`. With
   * `call` (the RPC's client and request id) and step-up attempts wired in, the check runs under the
   * user's login lock: `resource_exhausted` (reason locked) while it is on, and a wrong `current`
   * counts as a failed sign-in.
   */
  changePassword(userId: string, current: string, next: string, call?: { client: ClientInfo; requestId: string }): Promise<void>;
  /**
   * Checks a username and password. Unknown user, disabled user and wrong password all give undefined
   * after the same amount of work, so neither the answer nor its timing reveals which it was. On success
   * a hash with outdated parameters is transparently replaced. No throttling, no MFA: the caller's job.
   */
  authenticatePassword(username: string, password: string): Promise<{ user: UserRecord } | undefined>;
  /** Records a completed sign-in (after MFA, when the caller issues the session). */
  touchLastLogin(userId: string): Promise<void>;
  /**
   * Creates the first owner; `failed_precondition` ("an owner already exists") once any owner exists.
   * Of several runs racing, exactly one creates an owner: each first claims the one bootstrap by inserting
   * a fixed-id document (UsersStore.claimBootstrap), and the others are refused.
   */
  bootstrapOwner(input: { username: string; password: string; email?: string }): Promise<UserRecord>;
  /**
   * Claims the usernames and e-mail addresses of users created before identifier claims existed, once
   * per database (at start); resolves with how many users it went through.
   */
  backfillIdentifierClaims(): Promise<number>;
}

export interface UsersServiceDeps {
  usersStore: UsersStore;
  hasher: PasswordHasher;
  audit: AuditRecorder;
  /** Puts ChangePassword's current-password check under the login lock (see {@link StepUpAttempts}). */
  stepUp?: StepUpAttempts;
  now?: () => Date;
}

/** Whether going from `before` to `after` raises a role (user → admin, admin → owner, …). */
export function isPromotion(before: Role, after: Role): boolean {
  return ROLE_ORDER.indexOf(after) > ROLE_ORDER.indexOf(before);
}

/** Whether `value` names a role; request fields are checked with it before they reach a rule. */
export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLE_ORDER as readonly string[]).includes(value);
}

export function createUsersService(deps: UsersServiceDeps): UsersService {
  const { usersStore, hasher, audit } = deps;
  const now = deps.now ?? (() => new Date());
  const claims = createIdentifierClaims({ usersStore, now });

  async function requireUser(id: string): Promise<UserRecord> {
    const user = typeof id === "string" && id.length <= 64 ? await usersStore.findById(id) : undefined;
    if (!user) throw new DomainError("not_found", "user not found");
    return user;
  }

  /** Refuses with permission_denied, noting the attempt in the audit log first. */
  function deny(type: string, actor: UserActor, message: string, target?: string): never {
    audit.record({ type, outcome: "denied", actor: auditActorOf(actor), ...(target ? { target: { kind: "user", id: target } } : {}), reason: message });
    throw new DomainError("permission_denied", message);
  }

  async function insertNew(input: { username: string; email?: string | undefined; password: string; role: Role }, id: string = randomUUID()): Promise<UserRecord> {
    const name = normalizeUsername(input.username);
    const email = normalizeEmail(input.email);
    const password = await requirePolicy(input.password, [name.display, email]);
    // Claim the identifiers before the slow hash: a concurrent create of the same name or address fails now.
    const identifiers = [usernameClaim(name.display), ...(email !== undefined ? [emailClaim(email)] : [])];
    await claims.claim(id, identifiers);
    try {
      return await storeNew(id, name, email, input.role, password);
    } catch (err) {
      await claims.release(id, identifiers);
      throw err;
    }
  }

  async function storeNew(id: string, name: { display: string; key: string }, email: string | undefined, role: Role, password: string): Promise<UserRecord> {
    const at = now();
    const user: UserRecord = {
      _id: id,
      username: name.display,
      usernameKey: name.key,
      ...(email !== undefined ? { email } : {}),
      role,
      disabled: false,
      passwordHash: await hasher.hash(password),
      createdAt: at,
      updatedAt: at,
      passwordChangedAt: at,
    };
    await usersStore.insert(user);
    return user;
  }

  const passwords = createUserPasswords({ usersStore, hasher, audit, ...(deps.stepUp ? { stepUp: deps.stepUp } : {}), requireUser, now });
  const bootstrapOwner = createOwnerBootstrap({ usersStore, audit, insertOwner: (input, id) => insertNew({ ...input, role: "owner" }, id), now });

  return {
    async createUser(actor, input) {
      // 1. The role must exist and be within what the actor may grant.
      if (!isRole(input.role)) throw new DomainError("invalid_argument", "role must be user, admin or owner");
      if (!roleAtLeast(actor.role, "admin")) deny("user.create", actor, "only admins and owners create users");
      if (!mayManageRole(actor.role, input.role)) {
        deny("user.create", actor, roleAtLeast(actor.role, input.role) ? "only an owner creates admins and owners" : "you cannot grant a role above your own");
      }

      // 2. Validate, hash, store; then the audit record, which must be durable before we report success.
      const user = await insertNew(input);
      await audit.recordNow({
        type: "user.create",
        outcome: "success",
        actor: auditActorOf(actor),
        target: { kind: "user", id: user._id },
        metadata: { username: user.username, role: user.role },
      });
      return user;
    },

    getUser: requireUser,

    async listUsers(input) {
      if (input.role !== undefined && !isRole(input.role)) throw new DomainError("invalid_argument", "role must be user, admin or owner");
      const pageSize = resolvePageSize(input.pageSize);
      const afterId = decodePageToken(input.pageToken);
      // One extra tells whether another page follows without a second query.
      const found = await usersStore.list({
        ...(input.role !== undefined ? { role: input.role } : {}),
        ...(input.disabled !== undefined ? { disabled: input.disabled === true } : {}),
        ...(afterId !== undefined ? { afterId } : {}),
        pageSize: pageSize + 1,
      });
      const users = found.slice(0, pageSize);
      const last = users.at(-1);
      return found.length > pageSize && last ? { users, nextPageToken: encodePageToken(last._id) } : { users };
    },

    async updateUser(actor, id, input) {
      // 1. Validate the change itself.
      if (input.role !== undefined && !isRole(input.role)) throw new DomainError("invalid_argument", "role must be user, admin or owner");
      if (input.disabled !== undefined && typeof input.disabled !== "boolean") throw new DomainError("invalid_argument", "disabled must be true or false");
      const email = input.email === undefined ? undefined : (normalizeEmail(input.email) ?? null);
      if (!roleAtLeast(actor.role, "admin")) deny("user.update", actor, "only admins and owners change users", id);
      const before = await requireUser(id);
      const role = input.role ?? before.role;
      const disabled = input.disabled ?? before.disabled;

      // 2. Who may change whom.
      if (role !== before.role && before._id === actor.userId) deny("user.update", actor, "you cannot change your own role", id);
      if (!mayManageRole(actor.role, before.role)) deny("user.update", actor, "only an owner changes admins and owners", id);
      if (!mayManageRole(actor.role, role)) deny("user.update", actor, "only an owner grants the admin or owner role", id);

      // 3. Never leave the gateway without an active owner.
      const losesOwner = before.role === "owner" && !before.disabled && (role !== "owner" || disabled);
      if (losesOwner && (await usersStore.countActiveOwners()) <= 1) {
        throw new DomainError("failed_precondition", "the last active owner cannot be demoted or disabled");
      }

      // 4. Apply, only if nobody changed role or state meanwhile; re-check the owners afterwards, since two
      //    owners demoting each other at once could both have passed step 3.
      const patch: UserPatch = {
        ...(input.role !== undefined ? { role } : {}),
        ...(input.disabled !== undefined ? { disabled } : {}),
        ...(email !== undefined ? { email } : {}),
      };
      const newAddress = typeof email === "string" && email.toLowerCase() !== before.email?.toLowerCase() ? [emailClaim(email)] : [];
      await claims.claim(id, newAddress);
      const after = await usersStore.update(id, patch, { role: before.role, disabled: before.disabled });
      if (!after) {
        await claims.release(id, newAddress);
        throw new DomainError("aborted", "the user was changed concurrently; try again");
      }
      if (before.email !== undefined && before.email.toLowerCase() !== after.email?.toLowerCase()) await claims.release(id, [emailClaim(before.email)]);
      if (losesOwner && (await usersStore.countActiveOwners()) === 0) {
        await usersStore.update(id, { role: before.role, disabled: before.disabled });
        throw new DomainError("failed_precondition", "the last active owner cannot be demoted or disabled");
      }

      await audit.recordNow({
        type: "user.update",
        outcome: "success",
        actor: auditActorOf(actor),
        target: { kind: "user", id },
        metadata: {
          roleBefore: before.role,
          roleAfter: after.role,
          disabledBefore: before.disabled,
          disabledAfter: after.disabled,
          emailChanged: (before.email ?? null) !== (after.email ?? null),
        },
      });
      return after;
    },

    ...passwords,

    async touchLastLogin(userId) {
      await usersStore.touchLastLogin(userId, now());
    },

    backfillIdentifierClaims: () => claims.backfill(),

    bootstrapOwner,
  };
}
