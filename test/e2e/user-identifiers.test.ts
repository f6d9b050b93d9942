import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { usernameLookalikeKey } from "../../src/domain/users/identifier-claims.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok" as const,
    (e: unknown) => ConnectError.from(e).code,
  );
const PROTOCOLS: readonly WireProtocol[] = ["grpc", "connect"];

/**
 * Issue 11, items 8 and 9: usernames that look like a taken one, and e-mail addresses another user
 * has, are ALREADY_EXISTS — decided atomically (insert-with-unique-id), so concurrent requests on the
 * embedded FerretDB cannot both win.
 */
describe("unique usernames (by look) and e-mail addresses", () => {
  const dbName = testDatabaseName(import.meta.url);
  let gw: IdentityServer;
  let adminToken = "";
  const admin = (protocol: WireProtocol) => gw.client(AuthService, { token: adminToken, protocol });
  const create = (protocol: WireProtocol, username: string, email?: string) =>
    admin(protocol).createUser({ username, password: testPassword(username.normalize("NFKC")), role: Role.USER, ...(email ? { email } : {}) });
  const usersNamed = (username: string) => gw.store.db.collection("users").countDocuments({ usernameKey: username.normalize("NFKC").toLowerCase() });
  const usersWithEmail = (email: string) => gw.store.db.collection("users").countDocuments({ email: { $regex: `^${email.replace(/[.+]/g, "\\$&")}$`, $options: "i" } });

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName });
    await gw.createUser("admin-ida", "admin");
    adminToken = (await gw.client(AuthService).login({ username: "admin-ida", password: testPassword("admin-ida") })).accessToken;
  });
  afterAll(async () => {
    await gw.close();
  });

  it("computes UTS #39 skeletons: homoglyphs and digit look-alikes collide, distinct names do not", () => {
    expect(usernameLookalikeKey("\u043Ewner")).toBe(usernameLookalikeKey("owner")); // Cyrillic о
    expect(usernameLookalikeKey("0wner")).toBe(usernameLookalikeKey("Owner"));
    expect(usernameLookalikeKey("Iuser")).toBe(usernameLookalikeKey("luser"));
    expect(usernameLookalikeKey("owner")).not.toBe(usernameLookalikeKey("owners"));
    expect(usernameLookalikeKey("iuser")).not.toBe(usernameLookalikeKey("luser"));
  });

  it.each(PROTOCOLS)("refuses a username that looks like a taken one with ALREADY_EXISTS (%s)", async (protocol) => {
    const base = `owner${protocol}`;
    await create(protocol, base);
    for (const lookalike of [`\u043Ewner${protocol}`, `0wner${protocol}`, `OWNER${protocol}`, `\uFF4Fwner${protocol}`]) {
      expect(await codeOf(create(protocol, lookalike)), lookalike).toBe(Code.AlreadyExists);
    }
    expect(await gw.store.db.collection("users").countDocuments({ usernameKey: { $regex: `wner${protocol}$` } })).toBe(1);
    // A name that merely shares letters is fine.
    expect(await codeOf(create(protocol, `${base}-2`))).toBe("ok");
  });

  it.each(PROTOCOLS)("refuses an e-mail address another user has, on create and on update (%s)", async (protocol) => {
    const email = `taken-${protocol}@example.com`;
    const first = await create(protocol, `first-${protocol}`, email);
    expect(await codeOf(create(protocol, `second-${protocol}`, email.toUpperCase()))).toBe(Code.AlreadyExists);
    expect(await usersNamed(`second-${protocol}`)).toBe(0);
    const other = await create(protocol, `third-${protocol}`, `third-${protocol}@example.com`);
    expect(await codeOf(admin(protocol).updateUser({ userId: other.user!.id, email }))).toBe(Code.AlreadyExists);
    expect((await admin(protocol).getUser({ userId: other.user!.id })).user!.email).toBe(`third-${protocol}@example.com`);
    // Letting an address go frees it; keeping one's own (in another case) is no conflict.
    await admin(protocol).updateUser({ userId: first.user!.id, email: `first-new-${protocol}@example.com` });
    expect((await admin(protocol).updateUser({ userId: other.user!.id, email })).user!.email).toBe(email);
    expect((await admin(protocol).updateUser({ userId: other.user!.id, email: email.toUpperCase().replace("EXAMPLE.COM", "example.com") })).user).toBeDefined();
    // The third user's old address is free again too.
    expect(await codeOf(create(protocol, `fourth-${protocol}`, `third-${protocol}@example.com`))).toBe("ok");
  });

  it.each(PROTOCOLS)("lets exactly one of concurrent creates have an address or a look-alike name (%s)", async (protocol) => {
    const email = `race-${protocol}@example.com`;
    const byEmail = await Promise.all(Array.from({ length: 6 }, (_, i) => codeOf(create(protocol, `racer${i}-${protocol}`, email))));
    expect(byEmail.filter((c) => c === "ok")).toHaveLength(1);
    expect(byEmail.filter((c) => c === Code.AlreadyExists)).toHaveLength(5);
    expect(await usersWithEmail(email)).toBe(1);
    const names = [`mallory-${protocol}`, `MALLORY-${protocol}`, `rnallory-${protocol}`, `ma1lory-${protocol}`.replace("1", "l"), `\u217Fallory-${protocol}`];
    const byName = await Promise.all(names.map((name) => codeOf(create(protocol, name))));
    expect(byName.filter((c) => c === "ok")).toHaveLength(1);
    expect(byName.filter((c) => c === Code.AlreadyExists)).toHaveLength(names.length - 1);
  });

  it("claims the identifiers of users from before claims existed when an instance starts", async () => {
    const legacy = await create("grpc", "legacy-lou", "lou@example.com");
    // As a database from before this version: the user's claims and the backfill marker are not there.
    await gw.store.db.collection("user_claims").deleteMany({ $or: [{ userId: legacy.user!.id }, { _id: "marker:identifier-claims-v1" as never }] });
    expect(await codeOf(create("grpc", "1egacy-lou"))).toBe("ok"); // without claims, the look-alike got in
    const later = await startIdentityServer({ dbName });
    try {
      const token = (await later.client(AuthService).login({ username: "admin-ida", password: testPassword("admin-ida") })).accessToken;
      const client = later.client(AuthService, { token, protocol: "connect" });
      expect(await codeOf(client.createUser({ username: "legacy-l0u", password: testPassword("legacy-l0u"), role: Role.USER }))).toBe(Code.AlreadyExists);
      expect(await codeOf(client.createUser({ username: "other-lou", email: "LOU@example.com", password: testPassword("other-lou"), role: Role.USER }))).toBe(Code.AlreadyExists);
    } finally {
      await later.close();
    }
  });

  it.each(PROTOCOLS)("lets exactly one of concurrent updates take an address (%s)", async (protocol) => {
    const email = `wanted-${protocol}@example.com`;
    const contenders = await Promise.all([0, 1, 2, 3].map((i) => create(protocol, `contender${i}-${protocol}`)));
    const outcomes = await Promise.all(contenders.map((c) => codeOf(admin(protocol).updateUser({ userId: c.user!.id, email }))));
    expect(outcomes.filter((c) => c === "ok")).toHaveLength(1);
    expect(outcomes.filter((c) => c === Code.AlreadyExists)).toHaveLength(3);
    expect(await usersWithEmail(email)).toBe(1);
  });
});
