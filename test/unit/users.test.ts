import { randomUUID } from "node:crypto";
import { testSealer } from "../helpers/test-sealer.ts";
import { beforeAll, describe, expect, it } from "vitest";
import type { Role } from "../../src/domain/permissions.ts";
import { createAuditRecorder, type AuditRecorder } from "../../src/domain/audit/audit-recorder.ts";
import { DomainError } from "../../src/domain/errors.ts";
import { createPasswordHasher, type PasswordHasher } from "../../src/domain/passwords/password-hasher.ts";
import { normalizeEmail, normalizeUsername } from "../../src/domain/users/identifiers.ts";
import { createUsersService, isPromotion, type UserActor, type UsersService } from "../../src/domain/users/users.ts";
import { createAuditStore } from "../../src/store/audit-store.ts";
import { createUsersStore, type UserRecord, type UsersStore } from "../../src/store/users-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

// Cheap parameters keep the suite fast; the rehash test raises them explicitly.
const FAST = { memoryKiB: 8192, timeCost: 1, parallelism: 1 };
const PASSWORD = "violet harbor quantum tangerine";
const OTHER_PASSWORD = "maple cobalt lantern origami";

let usersStore: UsersStore;
let hasher: PasswordHasher;
let users: UsersService;
let audit: AuditRecorder;

beforeAll(() => {
  usersStore = createUsersStore(database.store);
  hasher = createPasswordHasher(FAST);
  audit = createAuditRecorder({ store: createAuditStore(database.store, testSealer) });
  users = service(hasher);
});

function service(withHasher: PasswordHasher): UsersService {
  return createUsersService({ usersStore, hasher: withHasher, audit });
}

/** A unique, valid username for one test. */
function name(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

async function expectDomainError(promise: Promise<unknown>, code: DomainError["code"], message?: string | RegExp): Promise<DomainError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
  if (message !== undefined) expect((error as DomainError).message).toMatch(message);
  return error as DomainError;
}

/** A user stored directly with the given role: the starting point of the RBAC tests. */
async function seed(role: Role, options: { disabled?: boolean } = {}): Promise<UserActor & { user: UserRecord }> {
  const username = name(role);
  const at = new Date();
  const user: UserRecord = {
    _id: randomUUID(),
    username,
    usernameKey: username.toLowerCase(),
    role,
    disabled: options.disabled ?? false,
    passwordHash: await hasher.hash(PASSWORD),
    createdAt: at,
    updatedAt: at,
    passwordChangedAt: at,
  };
  await usersStore.insert(user);
  return { kind: "user", id: user._id, userId: user._id, role, displayName: username, user };
}

async function countUsers(filter: Record<string, unknown>): Promise<number> {
  return database.store.db.collection("users").countDocuments(filter);
}

describe("usernames and emails", () => {
  it("normalise with NFKC, trim, and fold case into the key", () => {
    expect(normalizeUsername("  ｆｕｌｌwidth ")).toEqual({ display: "fullwidth", key: "fullwidth" });
    expect(normalizeUsername("Alice.Smith")).toEqual({ display: "Alice.Smith", key: "alice.smith" });
    expect(normalizeUsername("ÉLODIE_9").key).toBe("élodie_9");
    expect(normalizeUsername("user@example.com").key).toBe("user@example.com");
  });

  it.each([
    ["10 KB", "a".repeat(10_240)],
    ["too short", "ab"],
    ["65 characters", "a".repeat(65)],
    ["control characters", "bob\u0000by"],
    ["a newline", "bob\nby"],
    ["an operator", "$where"],
    ["spaces", "bob by"],
    ["empty", "   "],
    ["a slash", "bob/by"],
  ])("refuse %s with invalid_argument and a message that does not echo the input", (_label, raw) => {
    let error: unknown;
    try {
      normalizeUsername(raw);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe("invalid_argument");
    expect((error as DomainError).message.length).toBeLessThan(120);
    if (raw.trim().length > 2) expect((error as DomainError).message).not.toContain(raw.trim());
  });

  it("accept a pragmatic email, lower-casing the domain", () => {
    expect(normalizeEmail(" Ada.Lovelace+gw@Example.COM ")).toBe("Ada.Lovelace+gw@example.com");
    expect(normalizeEmail(undefined)).toBeUndefined();
    expect(normalizeEmail("  ")).toBeUndefined();
    for (const bad of ["no-at-sign", "a@b", "a@@b.com", "a b@c.com", "a@-b.com", `${"x".repeat(250)}@e.com`, "a@b.c"]) {
      expect(() => normalizeEmail(bad)).toThrow(DomainError);
    }
  });
});

describe("createUser", () => {
  it("stores the normalised user with an argon2id hash, never the password, and audits it", async () => {
    const owner = await seed("owner");
    const user = await users.createUser(owner, { username: "  ｆｕｌｌwidth ", email: "Full@Example.com", password: PASSWORD, role: "user" });
    expect(user).toMatchObject({ username: "fullwidth", usernameKey: "fullwidth", email: "Full@example.com", role: "user", disabled: false });
    expect(user.passwordHash).toMatch(/^\$argon2id\$/);
    const stored = await database.store.db.collection("users").findOne({ _id: user._id as never });
    expect(JSON.stringify(stored)).not.toContain(PASSWORD);

    const events = await database.store.db.collection("audit_events").find({ type: "user.create", "target.id": user._id }).toArray();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: "success", actor: { kind: "user", id: owner.userId }, metadata: { role: "user" } });
    expect(JSON.stringify(events)).not.toContain(PASSWORD);

    // NFKC and case make these the same name.
    await expectDomainError(users.createUser(owner, { username: "FULLWIDTH", password: PASSWORD, role: "user" }), "already_exists", "username is taken");
  });

  it("treats Alice and alice as one username", async () => {
    const owner = await seed("owner");
    const base = name("Alice");
    await users.createUser(owner, { username: base, password: PASSWORD, role: "user" });
    await expectDomainError(users.createUser(owner, { username: base.toLowerCase(), password: PASSWORD, role: "user" }), "already_exists");
    expect(await countUsers({ usernameKey: base.toLowerCase() })).toBe(1);
  });

  it("stores nothing for a bad username, email or password", async () => {
    const owner = await seed("owner");
    const before = await countUsers({});
    for (const username of ["a".repeat(10_240), "bob\u0007", "$where", "two words"]) {
      await expectDomainError(users.createUser(owner, { username, password: PASSWORD, role: "user" }), "invalid_argument");
    }
    await expectDomainError(users.createUser(owner, { username: name("e"), email: "not an email", password: PASSWORD, role: "user" }), "invalid_argument");
    const weak = await expectDomainError(users.createUser(owner, { username: name("w"), password: "password1234", role: "user" }), "invalid_argument");
    expect(weak.message).not.toContain("password1234");
    await expectDomainError(users.createUser(owner, { username: name("r"), password: PASSWORD, role: "root" as Role }), "invalid_argument");
    expect(await countUsers({})).toBe(before);
  });

  it("lets nobody grant more than they may", async () => {
    const [user, admin, owner] = [await seed("user"), await seed("admin"), await seed("owner")];
    const attempt = (actor: UserActor, role: Role) => users.createUser(actor, { username: name("new"), password: PASSWORD, role });

    await expectDomainError(attempt(user, "user"), "permission_denied");
    await expectDomainError(attempt(user, "admin"), "permission_denied");
    await expectDomainError(attempt(admin, "admin"), "permission_denied", "only an owner");
    await expectDomainError(attempt(admin, "owner"), "permission_denied");
    await expect(attempt(admin, "user")).resolves.toMatchObject({ role: "user" });
    await expect(attempt(owner, "admin")).resolves.toMatchObject({ role: "admin" });
    await expect(attempt(owner, "owner")).resolves.toMatchObject({ role: "owner" });

    await audit.flush(); // refusals are recorded in the background
    const denied = await createAuditStore(database.store, testSealer).count({ type: "user.create", outcome: "denied" });
    expect(denied).toBeGreaterThanOrEqual(4);
  });
});

describe("getUser and listUsers", () => {
  it("finds by id and answers not_found otherwise", async () => {
    const { user } = await seed("user");
    await expect(users.getUser(user._id)).resolves.toMatchObject({ _id: user._id });
    await expectDomainError(users.getUser(randomUUID()), "not_found");
    await expectDomainError(users.getUser({ $ne: "" } as unknown as string), "not_found");
  });

  it("pages through users in id order with opaque tokens and filters", async () => {
    for (let i = 0; i < 5; i++) await seed("admin", { disabled: i % 2 === 0 });
    const all: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await users.listUsers({ role: "admin", pageSize: 2, ...(pageToken ? { pageToken } : {}) });
      expect(page.users.length).toBeLessThanOrEqual(2);
      all.push(...page.users.map((u) => u._id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(all).toEqual([...all].sort());
    expect(all.length).toBe(await countUsers({ role: "admin" }));

    const disabled = await users.listUsers({ role: "admin", disabled: true, pageSize: 500 });
    expect(disabled.users.every((u) => u.role === "admin" && u.disabled)).toBe(true);
    expect(disabled.users.length).toBe(await countUsers({ role: "admin", disabled: true }));
    expect((await users.listUsers({ pageSize: 0 })).users.length).toBeLessThanOrEqual(50);
  });

  it("clamps a page size above 500, refuses a negative one and malformed tokens", async () => {
    expect((await users.listUsers({ pageSize: 501 })).users.length).toBe(Math.min(500, await countUsers({})));
    await expectDomainError(users.listUsers({ pageSize: -1 }), "invalid_argument");
    await expectDomainError(users.listUsers({ pageToken: "!!!" }), "invalid_argument");
    await expectDomainError(users.listUsers({ pageToken: Buffer.from('{"$gt":""}').toString("base64url") }), "invalid_argument");
  });
});

describe("updateUser", () => {
  it("lets an admin change plain users only, and never into admins", async () => {
    const [admin, otherAdmin, user] = [await seed("admin"), await seed("admin"), await seed("user")];
    await expect(users.updateUser(admin, user.userId, { disabled: true, email: "u@example.com" })).resolves.toMatchObject({ disabled: true, email: "u@example.com" });
    await expectDomainError(users.updateUser(admin, user.userId, { role: "admin" }), "permission_denied");
    await expectDomainError(users.updateUser(admin, otherAdmin.userId, { disabled: true }), "permission_denied");
    await expectDomainError(users.updateUser(await seed("user"), user.userId, { disabled: false }), "permission_denied");
    await expect(users.getUser(user.userId)).resolves.toMatchObject({ role: "user", disabled: true });
  });

  it("lets an owner promote and demote, audits before/after, and always moves updatedAt", async () => {
    const [owner, user] = [await seed("owner"), await seed("user")];
    const promoted = await users.updateUser(owner, user.userId, { role: "admin" });
    expect(promoted.role).toBe("admin");
    expect(promoted.updatedAt.getTime()).toBeGreaterThan(user.user.updatedAt.getTime() - 1);
    const since = new Date(Date.now() - 5_000);
    expect((await usersStore.findUpdatedSince(since)).map((u) => u._id)).toContain(user.userId);

    const demoted = await users.updateUser(owner, user.userId, { role: "user", email: "" });
    expect(demoted.role).toBe("user");
    expect(demoted.email).toBeUndefined();
    const events = await database.store.db.collection("audit_events").find({ type: "user.update", "target.id": user.userId }).sort({ recorderSeq: 1 }).toArray();
    expect(events.map((e) => e["metadata"])).toEqual([expect.objectContaining({ roleBefore: "user", roleAfter: "admin" }), expect.objectContaining({ roleBefore: "admin", roleAfter: "user" })]);
    expect(isPromotion("user", "admin")).toBe(true);
    expect(isPromotion("owner", "admin")).toBe(false);
    expect(isPromotion("admin", "admin")).toBe(false);
  });

  it("lets nobody change their own role", async () => {
    const owner = await seed("owner");
    await seed("owner");
    await expectDomainError(users.updateUser(owner, owner.userId, { role: "admin" }), "permission_denied", "your own role");
  });

  it("keeps the last active owner: no demoting or disabling it until a second owner exists", async () => {
    // A fresh database so that the owners seeded by other tests do not count.
    await database.store.db.collection("users").deleteMany({ role: "owner" });
    const first = await seed("owner");
    const retired = await seed("owner", { disabled: true }); // a disabled owner does not count
    await expectDomainError(users.updateUser(first, first.userId, { disabled: true }), "failed_precondition", "last active owner");
    await expectDomainError(users.updateUser(retired, first.userId, { role: "admin" }), "failed_precondition");
    expect(await usersStore.countActiveOwners()).toBe(1);

    const second = await users.createUser(first, { username: name("second"), password: PASSWORD, role: "owner" });
    const secondActor = { kind: "user", id: second._id, userId: second._id, role: second.role, displayName: second.username } as const;
    await expect(users.updateUser(secondActor, first.userId, { role: "admin" })).resolves.toMatchObject({ role: "admin" });
    await expectDomainError(users.updateUser(secondActor, second._id, { disabled: true }), "failed_precondition");
    expect(await usersStore.countActiveOwners()).toBe(1);
  });

  it("answers not_found for an unknown user", async () => {
    await expectDomainError(users.updateUser(await seed("owner"), randomUUID(), { disabled: true }), "not_found");
  });
});

describe("changePassword", () => {
  it("needs the current password, applies the policy, and audits without the password", async () => {
    const { user } = await seed("user");
    await expectDomainError(users.changePassword(user._id, "not the password", OTHER_PASSWORD), "permission_denied", "current password is incorrect");
    await expectDomainError(users.changePassword(user._id, PASSWORD, "password1234"), "invalid_argument");
    await expectDomainError(users.changePassword(user._id, PASSWORD, PASSWORD), "invalid_argument");

    await users.changePassword(user._id, PASSWORD, OTHER_PASSWORD);
    const after = await users.getUser(user._id);
    expect(after.passwordChangedAt.getTime()).toBeGreaterThanOrEqual(user.passwordChangedAt.getTime());
    expect((await hasher.verify(after.passwordHash, OTHER_PASSWORD)).ok).toBe(true);
    expect((await hasher.verify(after.passwordHash, PASSWORD)).ok).toBe(false);

    await audit.flush();
    const events = await database.store.db.collection("audit_events").find({ type: "user.password_change", "target.id": user._id }).toArray();
    expect(events.map((e) => e["outcome"]).sort()).toEqual(["failure", "success"]);
    expect(JSON.stringify(events)).not.toContain(OTHER_PASSWORD);
  });
});

describe("authenticatePassword", () => {
  it("returns the user for the right password and undefined for unknown, wrong or disabled", async () => {
    const { user } = await seed("user");
    const disabled = (await seed("user", { disabled: true })).user;
    await expect(users.authenticatePassword(user.username.toUpperCase(), PASSWORD)).resolves.toMatchObject({ user: { _id: user._id } });
    await expect(users.authenticatePassword(user.username, "wrong password entirely")).resolves.toBeUndefined();
    await expect(users.authenticatePassword(name("nobody"), PASSWORD)).resolves.toBeUndefined();
    await expect(users.authenticatePassword(disabled.username, PASSWORD)).resolves.toBeUndefined();
    await expect(users.authenticatePassword("$where", PASSWORD)).resolves.toBeUndefined();
    await expect(users.authenticatePassword("x".repeat(10_000), PASSWORD)).resolves.toBeUndefined();
  });

  it("re-hashes transparently when the configured parameters grew", async () => {
    const { user } = await seed("user"); // hashed with FAST (m=8192, t=1)
    const stronger = service(createPasswordHasher({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 }));
    const result = await stronger.authenticatePassword(user.username, PASSWORD);
    expect(result?.user._id).toBe(user._id);

    const stored = await users.getUser(user._id);
    expect(stored.passwordHash).not.toBe(user.passwordHash);
    expect(stored.passwordHash).toMatch(/\$m=19456,/);
    expect(stored.passwordHash).toMatch(/t=2/);
    expect(stored.passwordChangedAt).toEqual(user.passwordChangedAt);
    await expect(stronger.authenticatePassword(user.username, PASSWORD)).resolves.toBeDefined();
  });
});

describe("bootstrapOwner", () => {
  /** Back to a database with no owner and no bootstrap claim. */
  async function resetOwners(): Promise<void> {
    await database.store.db.collection("users").deleteMany({ role: "owner" });
    await database.store.db.collection("meta").deleteMany({ _id: "bootstrap-owner" } as object);
  }

  it("creates the first owner with a system actor, then refuses a second", async () => {
    await resetOwners();
    expect(await usersStore.anyOwnerExists()).toBe(false);
    const owner = await users.bootstrapOwner({ username: name("root"), password: PASSWORD, email: "root@example.com" });
    expect(owner.role).toBe("owner");
    expect(await usersStore.anyOwnerExists()).toBe(true);

    await expectDomainError(users.bootstrapOwner({ username: name("root2"), password: PASSWORD }), "failed_precondition", "an owner already exists");
    expect(await countUsers({ role: "owner" })).toBe(1);

    const events = await database.store.db.collection("audit_events").find({ type: "user.bootstrap_owner" }).toArray();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: "success", actor: { kind: "system" }, target: { kind: "user", id: owner._id } });
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
  });

  it("applies the password policy", async () => {
    await resetOwners();
    await expectDomainError(users.bootstrapOwner({ username: name("root"), password: "qwertyuiopasdf" }), "invalid_argument", /too easy to guess/);
    expect(await usersStore.anyOwnerExists()).toBe(false);
  });

  it("refuses while another run holds a fresh claim, and takes over one abandoned for minutes", async () => {
    const claims = database.store.db.collection<{ _id: string; userId: string; at: Date }>("meta");
    await resetOwners();
    await claims.insertOne({ _id: "bootstrap-owner", userId: randomUUID(), at: new Date() });
    await expectDomainError(users.bootstrapOwner({ username: name("root"), password: PASSWORD }), "failed_precondition", /another bootstrap-owner run/);
    expect(await usersStore.anyOwnerExists()).toBe(false);

    await resetOwners();
    await claims.insertOne({ _id: "bootstrap-owner", userId: randomUUID(), at: new Date(Date.now() - 10 * 60_000) });
    const owner = await users.bootstrapOwner({ username: name("root"), password: PASSWORD });
    expect(await claims.findOne({ _id: "bootstrap-owner" })).toMatchObject({ userId: owner._id });
  });
});
