import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthMethod, AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { totpCodeAt } from "../../src/domain/mfa/totp.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
const STEP = 30_000;
/** The code of the current time step shifted by `offset` steps (the server accepts ±1). */
const code = (secret: string, offset: number) => totpCodeAt(secret, Date.now() + offset * STEP);

describe("TOTP MFA", () => {
  let gw: IdentityServer;
  let secret = "";
  let backupCodes: string[] = [];
  const password = testPassword("frank");

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("frank", "user");
  });
  afterAll(async () => {
    await gw.close();
  });

  it("enrols: nothing changes until a valid code confirms it, then 10 backup codes are shown once", async () => {
    const { accessToken } = await gw.client(AuthService).login({ username: "frank", password });
    const auth = gw.client(AuthService, { token: accessToken });
    const begun = await auth.beginMfaEnrollment({});
    secret = begun.secret;
    expect(begun.otpauthUri).toMatch(/^otpauth:\/\/totp\/Portcullis:frank\?/);
    expect(Buffer.from(begun.qrCodePng.subarray(0, 8)).toString("hex")).toBe("89504e470d0a1a0a");
    // Not active yet: login needs no code.
    await expect(gw.client(AuthService).login({ username: "frank", password })).resolves.toBeDefined();
    expect((await codeOf(auth.confirmMfaEnrollment({ totpCode: "000000" === code(secret, -1) ? "111111" : "000000" })))?.code).toBe(Code.InvalidArgument);
    const confirmed = await auth.confirmMfaEnrollment({ totpCode: code(secret, -1) });
    backupCodes = confirmed.backupCodes;
    expect(new Set(backupCodes).size).toBe(10);
    expect((await auth.whoAmI({})).mfaEnabled).toBe(true);
    const stored = JSON.stringify(await gw.store.db.collection("mfa_factors").find().toArray());
    expect(stored).not.toContain(secret);
    for (const backup of backupCodes) expect(stored).not.toContain(backup);
  });

  it("asks for a code with a machine-readable MFA_REQUIRED, only after the password is right", async () => {
    const error = await codeOf(gw.client(AuthService).login({ username: "frank", password }));
    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(error?.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorReason.MFA_REQUIRED);
    const wrongPassword = await codeOf(gw.client(AuthService).login({ username: "frank", password: "not-the-password-1" }));
    expect(wrongPassword?.code).toBe(Code.Unauthenticated);
  });

  it("accepts a TOTP code once: a replay is refused", async () => {
    const now = code(secret, 0);
    await expect(gw.client(AuthService).login({ username: "frank", password, mfaCode: now })).resolves.toBeDefined();
    expect((await codeOf(gw.client(AuthService).login({ username: "frank", password, mfaCode: now })))?.code).toBe(Code.Unauthenticated);
  });

  it("accepts a backup code instead, once", async () => {
    const backup = backupCodes[0]!;
    const res = await gw.client(AuthService).login({ username: "frank", password, mfaCode: backup });
    expect(res.backupCodesRemaining).toBe(9);
    expect((await codeOf(gw.client(AuthService).login({ username: "frank", password, mfaCode: backup })))?.code).toBe(Code.Unauthenticated);
  });

  it("needs a fresh code to regenerate backup codes or disable MFA", async () => {
    const { accessToken } = await gw.client(AuthService).login({ username: "frank", password, mfaCode: backupCodes[1]! });
    const auth = gw.client(AuthService, { token: accessToken });
    const refused = await codeOf(auth.regenerateBackupCodes({}));
    expect(refused?.code).toBe(Code.PermissionDenied);
    expect(refused?.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorReason.FRESH_MFA_REQUIRED);
    const regenerated = await auth.regenerateBackupCodes({ mfaCode: backupCodes[2]! });
    expect(regenerated.backupCodes).toHaveLength(10);
    // The old codes are gone.
    expect((await codeOf(gw.client(AuthService).login({ username: "frank", password, mfaCode: backupCodes[3]! })))?.code).toBe(Code.Unauthenticated);
    expect((await codeOf(auth.disableMfa({ mfaCode: "123" })))?.code).toBe(Code.PermissionDenied);
    const disabled = await auth.disableMfa({}, { headers: { "x-mfa-code": regenerated.backupCodes[0]! } });
    expect(disabled.user?.mfaEnabled).toBe(false);
    await expect(gw.client(AuthService).login({ username: "frank", password })).resolves.toBeDefined();
    expect((await gw.auditEvents("mfa.disable")).length).toBe(1);
  });
  it("refuses wrong code types without changing anything (last: the failures lock the account)", async () => {
    const { accessToken } = await gw.client(AuthService).login({ username: "frank", password });
    const auth = gw.client(AuthService, { token: accessToken });
    secret = (await auth.beginMfaEnrollment({})).secret;
    await auth.confirmMfaEnrollment({ totpCode: code(secret, -1) });
    const before = JSON.stringify(await gw.store.db.collection("mfa_factors").find().toArray());
    for (const mfaCode of ["1234567", "12345a", "x".repeat(10_000), "\u0000\u0001", "$gt", "99999-99999"]) {
      // Unauthenticated, until the failures lock the account (RESOURCE_EXHAUSTED): never anything else.
      expect([Code.Unauthenticated, Code.ResourceExhausted]).toContain((await codeOf(gw.client(AuthService).login({ username: "frank", password, mfaCode })))?.code);
    }
    expect(JSON.stringify(await gw.store.db.collection("mfa_factors").find().toArray())).toBe(before);
  });

  it("WhoAmI tells how the session was established: with MFA or not, by login or by refresh, and until when", async () => {
    const { loginWithMfa } = await import("../helpers/identity-server.ts");
    await gw.createUser("gwen", "user");
    const plain = await gw.client(AuthService).login({ username: "gwen", password: testPassword("gwen") });
    let me = await gw.client(AuthService, { token: plain.accessToken }).whoAmI({});
    expect(me).toMatchObject({ mfaVerified: false, authMethod: AuthMethod.PASSWORD, sessionId: plain.sessionId });
    expect(Number(me.credentialExpiresAt!.seconds)).toBe(Number(plain.accessTokenExpiresAt!.seconds));

    const { backupCodes: gwensCodes } = await loginWithMfa(gw, "gwen"); // enrols gwen
    const withCode = await gw.client(AuthService).login({ username: "gwen", password: testPassword("gwen"), mfaCode: gwensCodes[0]! });
    me = await gw.client(AuthService, { token: withCode.accessToken }).whoAmI({});
    expect(me).toMatchObject({ mfaVerified: true, authMethod: AuthMethod.PASSWORD });
    const refreshed = await gw.client(AuthService).refresh({ refreshToken: withCode.refreshToken });
    me = await gw.client(AuthService, { token: refreshed.accessToken }).whoAmI({});
    expect(me).toMatchObject({ mfaVerified: true, authMethod: AuthMethod.REFRESH, sessionId: withCode.sessionId });
  });
});
