import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService, LogoutScope } from "../../gen/portcullis/v1/auth_pb.js";
import { ROLE_PERMISSIONS } from "../../src/domain/permissions.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { loginWithMfa, startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok" as const,
    (e: unknown) => ConnectError.from(e).code,
  );

/**
 * Issue 11, item 5: API keys and tokens exchanged for them are programs' credentials; they may not
 * manage their owner's account or sessions, whatever their scopes. The rule is `session_only` in the
 * proto, enforced by the authorization interceptor.
 */
describe("program credentials and account management", () => {
  let gw: IdentityServer;
  let owner: Awaited<ReturnType<typeof loginWithMfa>>;
  const credentials: Record<string, string> = {};

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("owner-pat", "owner");
    owner = await loginWithMfa(gw, "owner-pat");
    const keys = gw.client(ApiKeyService, { token: owner.accessToken });
    // The key (ai.query only), and one carrying every permission the owner has.
    credentials["narrow key"] = (await keys.createApiKey({ name: "narrow", scopes: ["ai.query"] })).secret;
    credentials["full key"] = (await keys.createApiKey({ name: "full", scopes: [...ROLE_PERMISSIONS.owner] })).secret;
    credentials["exchanged token"] = (await gw.client(AuthService).exchangeApiKey({ apiKey: credentials["full key"]! })).accessToken;
  });
  afterAll(async () => {
    await gw.close();
  });

  const calls = (auth: Client<typeof AuthService>, sessionId: string) => ({
    "Logout(ALL_SESSIONS)": () => auth.logout({ scope: LogoutScope.ALL_SESSIONS }),
    "Logout(CURRENT_SESSION)": () => auth.logout({}),
    ListSessions: () => auth.listSessions({}),
    RevokeSession: () => auth.revokeSession({ sessionId }),
    ChangePassword: () => auth.changePassword({ currentPassword: testPassword("owner-pat"), newPassword: "an-entirely-new-Passphrase-42" }),
    BeginMfaEnrollment: () => auth.beginMfaEnrollment({}),
    ConfirmMfaEnrollment: () => auth.confirmMfaEnrollment({ totpCode: "123456" }),
    DisableMfa: () => auth.disableMfa({ mfaCode: owner.backupCodes[0]! }),
    RegenerateBackupCodes: () => auth.regenerateBackupCodes({ mfaCode: owner.backupCodes[0]! }),
    EmergencyRevoke: () => auth.emergencyRevoke({ reason: "from a program", mfaCode: owner.backupCodes[0]! }),
  });

  for (const protocol of ["grpc", "connect"] as const satisfies readonly WireProtocol[]) {
    it.each(["narrow key", "full key", "exchanged token"])(`refuses a %s on account and session management with PERMISSION_DENIED (${protocol})`, async (kind) => {
      const auth = gw.client(AuthService, { token: credentials[kind]!, protocol });
      for (const [name, call] of Object.entries(calls(auth, owner.sessionId))) {
        expect(await codeOf(call()), name).toBe(Code.PermissionDenied);
      }
      // Nothing happened: the owner's session lives, MFA is on, the backup code still works.
      const session = gw.client(AuthService, { token: owner.accessToken, protocol });
      const me = await session.whoAmI({});
      expect(me.mfaEnabled).toBe(true);
      expect((await session.listSessions({})).sessions.map((s) => s.id)).toContain(owner.sessionId);
      // The credential itself still works where programs belong.
      expect(await codeOf(auth.whoAmI({}))).toBe("ok");
      expect(await gw.auditEvents("access.denied")).toContainEqual(expect.objectContaining({ method: "/portcullis.v1.AuthService/ListSessions" }));
    });
  }

  it("still lets the person's own session manage the account", async () => {
    const session = gw.client(AuthService, { token: owner.accessToken, protocol: "connect" });
    expect((await session.listSessions({})).sessions.length).toBeGreaterThanOrEqual(1);
    expect((await session.regenerateBackupCodes({ mfaCode: owner.backupCodes.pop()! })).backupCodes).toHaveLength(10);
  });
});
