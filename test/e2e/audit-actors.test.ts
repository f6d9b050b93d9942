import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuditExportFormat, AuditService, type AuditEvent } from "../../gen/portcullis/v1/audit_pb.js";
import { AuthService, LogoutScope } from "../../gen/portcullis/v1/auth_pb.js";
import { PrincipalKind, Role, SortOrder } from "../../gen/portcullis/v1/common_pb.js";
import { generateApiKey } from "../../src/domain/api-keys/key-format.ts";
import { collect, userWithToken } from "../helpers/audit.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { loginWithMfa, startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";
import { noteSecret } from "../helpers/secret-capture.ts";

const PROTOCOLS: readonly WireProtocol[] = ["grpc", "grpc-web", "connect"];
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e).code,
  );

/**
 * The proto's AuditActor: every event names its actor (`display_name`: the username, the API key's
 * name, "anonymous", "system" or the acting component), and an API-key actor names the user it acts
 * for (`on_behalf_of_user_id`). Driven through the RPCs that write events, by users and by API keys.
 */
describe("audit actors name themselves in every event", () => {
  let gw: IdentityServer;
  let owner: { id: string; accessToken: string; backupCodes: string[] };
  let admin: Awaited<ReturnType<typeof userWithToken>>;
  let user: Awaited<ReturnType<typeof userWithToken>>;
  /** API key id → owner user id, and the names the keys were given. */
  const keyOwners = new Map<string, string>();
  const keyNames = new Map<string, string>();
  const usernames = new Map<string, string>();

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000" } });
    const ownerRecord = await gw.createUser("actor-owner", "owner");
    owner = { id: ownerRecord._id, ...(await loginWithMfa(gw, "actor-owner")) };
    admin = await userWithToken(gw, "actor-admin", "admin");
    user = await userWithToken(gw, "actor-user", "user");
    for (const [id, name] of [
      [owner.id, "actor-owner"],
      [admin.userId, "actor-admin"],
      [user.userId, "actor-user"],
    ] as const)
      usernames.set(id, name);

    const auth = (token?: string) => gw.client(AuthService, token === undefined ? {} : { token });
    const keys = (token: string) => gw.client(ApiKeyService, { token });
    const newKey = async (token: string, name: string, scopes: string[]) => {
      const created = await keys(token).createApiKey({ name, scopes });
      keyOwners.set(created.apiKey!.id, created.apiKey!.ownerUserId);
      keyNames.set(created.apiKey!.id, name);
      return created;
    };

    // Logins: good, bad password, unknown user; refresh, and a replayed refresh token.
    await failure(auth().login({ username: "actor-user", password: "wrong-password-entirely" }));
    await failure(auth().login({ username: "nobody-at-all", password: "wrong-password-entirely" }));
    const session = await auth().login({ username: "actor-user", password: testPassword("actor-user") });
    await auth().refresh({ refreshToken: session.refreshToken });
    await failure(auth().refresh({ refreshToken: session.refreshToken }));

    // API keys used by users and acting themselves: create, use (new IP), exchange, refused secrets.
    const userKey = await newKey(user.token, "user-key", ["ai.status", "keys.read", "keys.write", "audit.read.self"]);
    const adminKey = await newKey(admin.token, "admin-key", ["audit.read", "users.manage", "keys.read", "keys.write"]);
    await auth(userKey.secret).whoAmI({});
    await newKey(userKey.secret, "made-by-a-key", ["ai.status"]);
    await auth().exchangeApiKey({ apiKey: userKey.secret });
    // The key's id with another secret (a valid checksum): refused as a wrong secret, by an anonymous caller.
    const forged = generateApiKey("sk", userKey.apiKey!.id).key;
    await failure(auth().exchangeApiKey({ apiKey: forged }));
    await failure(auth(forged).whoAmI({}));
    await failure(keys(userKey.secret).listApiKeys({ allUsers: true })); // denied: the key's owner lacks users.manage
    await keys(adminKey.secret).listApiKeys({ userId: user.userId }); // reading another user's keys is audited
    await keys(admin.token).getApiKeyStats({ allUsers: true });
    await keys(user.token).revokeApiKey({ keyId: [...keyNames].find(([, n]) => n === "made-by-a-key")![0], reason: "no longer needed" });

    // Accounts, passwords, MFA, sessions, tokens.
    const created = await auth(admin.token).createUser({ username: "actor-new", password: testPassword("actor-new"), role: Role.USER });
    usernames.set(created.user!.id, "actor-new");
    await failure(auth(user.token).createUser({ username: "actor-never", password: testPassword("actor-never"), role: Role.USER }));
    await failure(auth(admin.token).updateUser({ userId: owner.id, disabled: true }));
    await auth(adminKey.secret).updateUser({ userId: created.user!.id, email: "new@example.com" });
    await failure(auth(user.token).changePassword({ currentPassword: "not-the-password", newPassword: testPassword("actor-user-2") }));
    const other = await auth().login({ username: "actor-user", password: testPassword("actor-user") });
    await auth(other.accessToken).changePassword({ currentPassword: testPassword("actor-user"), newPassword: testPassword("actor-user-2"), keepOtherSessions: true });
    noteSecret(testPassword("actor-user-2"));
    await auth(admin.token).listSessions({ userId: user.userId });
    const third = await auth().login({ username: "actor-user", password: testPassword("actor-user-2") });
    await auth(user.token).revokeToken({ token: third.refreshToken });
    const fourth = await auth().login({ username: "actor-user", password: testPassword("actor-user-2") });
    await auth(user.token).revokeSession({ sessionId: fourth.sessionId });
    await auth(other.accessToken).logout({ scope: LogoutScope.CURRENT_SESSION });
    owner.backupCodes = (await auth(owner.accessToken).regenerateBackupCodes({ mfaCode: owner.backupCodes[0]! })).backupCodes;

    // Reading the log is itself audited: by a user, by an API key, and an export.
    const audit = gw.client(AuditService, { token: admin.token });
    await audit.queryAuditEvents({ pageSize: 1 });
    await gw.client(AuditService, { token: adminKey.secret }).queryAuditEvents({ pageSize: 1 });
    await gw.client(AuditService, { token: userKey.secret }).listMyAuditEvents({ pageSize: 1 });
    await audit.getSuspiciousActivity({});
    await collect(audit.exportAuditEvents({ format: AuditExportFormat.JSONL }));

    await gw.audit.flush();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it.each(PROTOCOLS)("every event read over %s has actor.display_name, and API-key actors on_behalf_of_user_id", async (protocol) => {
    const events: AuditEvent[] = [];
    const client = gw.client(AuditService, { token: admin.token, protocol });
    for (let pageToken = ""; ; ) {
      const page = await client.queryAuditEvents({ pageSize: 1000, pageToken, order: SortOrder.ASCENDING });
      events.push(...page.events);
      if (page.nextPageToken === "") break;
      pageToken = page.nextPageToken;
    }
    const types = new Set(events.map((e) => e.type));
    // The scenario reached the events it was meant to (so the checks below cover them).
    for (const type of [
      "auth.login",
      "auth.refresh",
      "auth.refresh_reuse",
      "api_key.create",
      "api_key.new_ip",
      "api_key.exchange",
      "api_key.authenticate",
      "api_key.list",
      "api_key.stats",
      "api_key.revoke",
      "access.denied",
      "user.create",
      "user.update",
      "user.password_change",
      "auth.sessions_list",
      "auth.token_revoke",
      "auth.session_revoke",
      "auth.logout",
      "mfa.enroll_begin",
      "mfa.enroll_confirm",
      "mfa.verify",
      "mfa.backup_codes_regenerate",
      "audit.query",
      "audit.list_mine",
      "audit.suspicious_query",
      "audit.export",
      "user.bootstrap_owner",
    ]) {
      expect(types, type).toContain(type);
    }
    for (const event of events) {
      const where = `${event.sequence} ${event.type} ${event.outcome}`;
      expect(event.actor, where).toBeDefined();
      const actor = event.actor!;
      expect(actor.displayName, where).not.toBe("");
      switch (actor.kind) {
        case PrincipalKind.USER:
          expect(actor.displayName, where).toBe(usernames.get(actor.id));
          expect(actor.onBehalfOfUserId, where).toBe("");
          break;
        case PrincipalKind.API_KEY:
          expect(actor.displayName, where).toBe(keyNames.get(actor.id));
          expect(actor.onBehalfOfUserId, where).toBe(keyOwners.get(actor.id));
          break;
        case PrincipalKind.ANONYMOUS:
          expect([actor.id, actor.displayName, actor.onBehalfOfUserId], where).toEqual(["", "anonymous", ""]);
          break;
        case PrincipalKind.SYSTEM:
          expect(actor.onBehalfOfUserId, where).toBe("");
          break;
        default:
          throw new Error(`${where}: actor kind ${actor.kind}`);
      }
    }
    // Events done by an API key are attributed to the key, for its owner.
    const byKey = events.filter((e) => e.actor?.kind === PrincipalKind.API_KEY).map((e) => e.type);
    expect(byKey).toEqual(expect.arrayContaining(["api_key.create", "api_key.new_ip", "api_key.exchange", "access.denied", "api_key.list", "user.update", "audit.query", "audit.list_mine"]));
    expect((await client.verifyAuditChain({})).ok).toBe(true);
  });

  it("ends the scenario with an emergency revoke, named after the owner who did it", async () => {
    await gw.client(AuthService, { token: owner.accessToken }).emergencyRevoke({ mfaCode: owner.backupCodes[0]!, reason: "drill" });
    const [event] = await gw.auditEvents("system.emergency_revoke");
    expect(event).toMatchObject({ actor: { kind: "user", id: owner.id, display: "actor-owner" } });
    expect(await failure(gw.client(AuthService, { token: admin.token }).whoAmI({}))).toBe(Code.Unauthenticated);
  });
});
