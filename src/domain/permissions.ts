/**
 * Roles and the named permissions each grants: the one table the authorization interceptor and the
 * domain consult. Roles are ordered owner > admin > user; each includes everything below it.
 */
export type Role = "user" | "admin" | "owner";

export const ROLE_ORDER: readonly Role[] = ["user", "admin", "owner"];

const USER_PERMISSIONS = ["ai.query", "ai.status", "ai.jobs", "audio.stream", "keys.read", "keys.write", "audit.read.self"] as const;

const ADMIN_PERMISSIONS = [
  ...USER_PERMISSIONS,
  "keys.verify",
  "audit.read",
  // Also the right to see and act on other users' sessions and API keys.
  "users.manage",
  "credentials.manage",
] as const;

const OWNER_PERMISSIONS = [...ADMIN_PERMISSIONS, "system.emergency"] as const;

export type Permission = (typeof OWNER_PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = Object.freeze({
  user: new Set<Permission>(USER_PERMISSIONS),
  admin: new Set<Permission>(ADMIN_PERMISSIONS),
  owner: new Set<Permission>(OWNER_PERMISSIONS),
});

/** Every permission name the gateway knows; an access rule naming another is a contract error. */
export const ALL_PERMISSIONS: ReadonlySet<string> = new Set<string>(OWNER_PERMISSIONS);

/** Whether `role` is at least `minimum` in the owner > admin > user order. */
export function roleAtLeast(role: Role, minimum: Role): boolean {
  return ROLE_ORDER.indexOf(role) >= ROLE_ORDER.indexOf(minimum);
}
