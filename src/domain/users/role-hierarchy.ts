import type { Role } from "../permissions.ts";

/**
 * Which roles' accounts a role may act on: the one rule behind changing or creating a user
 * (UpdateUser, CreateUser) and revoking another user's API keys, sessions and tokens. `users.manage`
 * says whether a caller may act on other people at all; this table says on whom. An owner acts on
 * anyone, owners included (there may be several); an admin on plain users only, never on an owner nor
 * on another admin; a user on nobody else.
 */
const MANAGEABLE_ROLES: Readonly<Record<Role, ReadonlySet<Role>>> = Object.freeze({
  owner: new Set<Role>(["user", "admin", "owner"]),
  admin: new Set<Role>(["user"]),
  user: new Set<Role>(),
});

/**
 * Whether a caller of role `actor` may act on an account of role `target` (or give an account that
 * role). Acting on one's own account is not a question for this table: callers decide that first.
 */
export function mayManageRole(actor: Role, target: Role): boolean {
  return MANAGEABLE_ROLES[actor].has(target);
}

/**
 * Whether a caller may act on what belongs to the user `target` (their keys, sessions, tokens): always
 * on their own; on another user's only with `users.manage` and a role the table lets them manage. An
 * unknown target (undefined) is refused: nothing may be done on behalf of an account we cannot place.
 */
export function mayActOnUser(
  actor: { readonly userId: string; readonly role: Role; readonly permissions: ReadonlySet<string> },
  target: { readonly userId: string; readonly role: Role | undefined },
): boolean {
  if (target.userId === actor.userId) return true;
  if (!actor.permissions.has("users.manage") || target.role === undefined) return false;
  return mayManageRole(actor.role, target.role);
}
