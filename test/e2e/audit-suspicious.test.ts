import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, SuspiciousActivityKind } from "../../gen/portcullis/v1/audit_pb.js";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Severity } from "../../gen/portcullis/v1/common_pb.js";
import { loadGatewayConfig } from "../../src/app/gateway-settings.ts";
import { loadConfig } from "../../src/config/config.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { expectCode, userWithToken } from "../helpers/audit.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

const THRESHOLDS = {
  PORTCULLIS_AUDIT_FAILED_LOGINS_PER_USER: "3",
  PORTCULLIS_AUDIT_FAILED_LOGINS_PER_IP: "4",
  PORTCULLIS_AUDIT_MFA_FAILURES: "2",
  PORTCULLIS_AUDIT_PERMISSION_DENIED_BURST: "3",
  PORTCULLIS_AUDIT_API_KEY_DISTINCT_IPS: "3",
};

describe("GetSuspiciousActivity", () => {
  let gw: IdentityServer;
  let admin = "";
  let victim: Awaited<ReturnType<typeof userWithToken>>;
  let reusedSession = "";

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: THRESHOLDS });
    admin = (await userWithToken(gw, "sus-admin", "admin")).token;
    victim = await userWithToken(gw, "sus-victim", "user");
    // Real failed logins (wrong password) and a real refresh-token reuse.
    const auth = gw.client(AuthService);
    for (let i = 0; i < 4; i++) await auth.login({ username: "sus-victim", password: "wrong-password-123" }).catch(() => undefined);
    const login = await auth.login({ username: "sus-victim", password: testPassword("sus-victim") });
    await auth.refresh({ refreshToken: login.refreshToken });
    await auth.refresh({ refreshToken: login.refreshToken }).catch(() => undefined);
    reusedSession = login.sessionId;
    // What the gateway cannot yet produce for real here (other client IPs, API keys, denials).
    const at = { actor: { kind: "user" as const, id: victim.userId } };
    for (let i = 0; i < 2; i++) await gw.audit.recordNow({ type: "auth.mfa", outcome: "failure", ...at });
    for (let i = 0; i < 3; i++) await gw.audit.recordNow({ type: "access.denied", outcome: "denied", actor: { kind: "user", id: "prober" } });
    for (const ip of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) await gw.audit.recordNow({ type: "api_key.use", outcome: "success", actor: { kind: "api_key", id: "key_1" }, ip });
    await gw.audit.recordNow({ type: "auth.login", outcome: "success", ...at, ip: "198.51.100.99" });
    await gw.audit.recordNow({ type: "system.emergency_revoke", outcome: "success", actor: { kind: "user", id: "the-owner" } });
    await gw.audit.flush();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("reports each kind of finding with severity, subject, count, times and sample events", async () => {
    const result = await gw.client(AuditService, { token: admin }).getSuspiciousActivity({});
    const byKind = (kind: SuspiciousActivityKind) => result.findings.filter((f) => f.kind === kind);
    // A wrong password names no account (the attempt might be for any): the subject is the attempted username.
    expect(byKind(SuspiciousActivityKind.FAILED_LOGINS_PER_USER)[0]).toMatchObject({ subject: "sus-victim", count: 4n, severity: Severity.HIGH });
    expect(byKind(SuspiciousActivityKind.FAILED_LOGINS_PER_IP)[0]).toMatchObject({ subject: "127.0.0.1", count: 4n });
    expect(byKind(SuspiciousActivityKind.REFRESH_TOKEN_REUSE)[0]).toMatchObject({ subject: reusedSession, severity: Severity.CRITICAL });
    expect(byKind(SuspiciousActivityKind.MFA_FAILURES)[0]).toMatchObject({ subject: victim.userId, count: 2n });
    expect(byKind(SuspiciousActivityKind.PERMISSION_DENIED_BURST)[0]).toMatchObject({ subject: "prober", count: 3n });
    expect(byKind(SuspiciousActivityKind.API_KEY_MANY_IPS)[0]).toMatchObject({ subject: "key_1", count: 3n });
    expect(byKind(SuspiciousActivityKind.LOGIN_FROM_NEW_IP)[0]).toMatchObject({ subject: victim.userId, severity: Severity.LOW });
    expect(byKind(SuspiciousActivityKind.EMERGENCY_ACTION)[0]).toMatchObject({ subject: "the-owner" });
    const failed = byKind(SuspiciousActivityKind.FAILED_LOGINS_PER_USER)[0]!;
    expect(failed.sampleEventIds).toHaveLength(4);
    expect(failed.firstSeen!.seconds).toBeLessThanOrEqual(failed.lastSeen!.seconds);
    // The samples lead back to the events.
    const sample = await gw.client(AuditService, { token: admin }).queryAuditEvents({ filter: { types: ["auth.login"] }, pageSize: 100 });
    expect(sample.events.map((e) => e.id)).toEqual(expect.arrayContaining([...failed.sampleEventIds]));
    // Most severe first; the minimum severity filters.
    expect(result.findings[0]!.severity).toBe(Severity.CRITICAL);
    const critical = await gw.client(AuditService, { token: admin }).getSuspiciousActivity({ minSeverity: Severity.CRITICAL });
    expect(critical.findings.every((f) => f.severity === Severity.CRITICAL)).toBe(true);
    expect(critical.findings.length).toBeGreaterThan(0);
    expect(result.eventsAnalyzed).toBeGreaterThan(15n);
    expect((await gw.auditEvents("audit.suspicious_query")).length).toBeGreaterThan(0);
  });

  it("an empty window has no findings; inverted and over-long windows are INVALID_ARGUMENT", async () => {
    const client = gw.client(AuditService, { token: admin });
    const old = await client.getSuspiciousActivity({ endTime: timestampFromDate(new Date(Date.now() - 7 * 86_400_000)) });
    expect(old.findings).toEqual([]);
    await expectCode(client.getSuspiciousActivity({ startTime: timestampFromDate(new Date()), endTime: timestampFromDate(new Date(Date.now() - 1000)) }), Code.InvalidArgument);
    await expectCode(client.getSuspiciousActivity({ startTime: timestampFromDate(new Date(Date.now() - 40 * 86_400_000)) }), Code.InvalidArgument);
    await expectCode(client.getSuspiciousActivity({ minSeverity: 99 as Severity }), Code.InvalidArgument);
  });
});

describe("automatic response", () => {
  it("is off by default", () => {
    expect(loadConfig({}).audit.autoResponse.rules).toEqual([]);
  });

  it("refuses unknown or mismatched rules at config load", () => {
    expect(() => loadGatewayConfig({ PORTCULLIS_AUDIT_AUTO_RESPONSE: "nonsense:lock_account" })).toThrow(/^PORTCULLIS_AUDIT_AUTO_RESPONSE: /);
    expect(() => loadGatewayConfig({ PORTCULLIS_AUDIT_AUTO_RESPONSE: "refresh_token_reuse:lock_account" })).toThrow(/cannot answer/);
  });

  it("revokes an API key used from too many addresses, auditing the action with its cause", async () => {
    const gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { ...THRESHOLDS, PORTCULLIS_AUDIT_AUTO_RESPONSE: "api_key_many_ips:revoke_api_key" } });
    try {
      const owner = await userWithToken(gw, "key-owner", "user");
      const { apiKey, secret } = await gw.client(ApiKeyService, { token: owner.token }).createApiKey({ name: "spread", scopes: ["ai.status"] });
      await expect(gw.client(AuthService, { token: secret }).whoAmI({})).resolves.toBeDefined();
      // Refusals do not count: a stranger spraying the (public) key id with wrong secrets from many
      // addresses must not get the owner's key revoked.
      for (const ip of ["198.51.100.11", "198.51.100.12", "203.0.113.13", "203.0.113.14", "192.0.2.15", "192.0.2.16"]) {
        gw.audit.record({ type: "api_key.authenticate", outcome: "denied", actor: { kind: "api_key", id: apiKey!.id }, ip, reason: "wrong_secret" });
      }
      await gw.audit.flush();
      await gw.gateway.runNow.respondToFindings();
      await expect(gw.client(AuthService, { token: secret }).whoAmI({})).resolves.toBeDefined();
      // The test's clients all come from 127.0.0.1: the uses from elsewhere are recorded as the gateway would.
      for (const ip of ["198.51.100.1", "198.51.100.2", "203.0.113.3", "203.0.113.4", "192.0.2.5", "192.0.2.6"]) {
        gw.audit.record({ type: "api_key.new_ip", outcome: "success", actor: { kind: "api_key", id: apiKey!.id }, ip });
      }
      await gw.audit.flush();
      expect(await gw.gateway.runNow.respondToFindings()).toBeGreaterThanOrEqual(1);
      await expectCode(gw.client(AuthService, { token: secret }).whoAmI({}), Code.Unauthenticated);
      expect((await gw.client(ApiKeyService, { token: owner.token }).getApiKey({ keyId: apiKey!.id })).apiKey?.revokeReason).toMatch(/api_key_many_ips/);
      expect(await gw.auditEvents("audit.auto_response")).toContainEqual(
        expect.objectContaining({ outcome: "success", metadata: expect.objectContaining({ action: "revoke_api_key", finding_kind: "api_key_many_ips" }) }),
      );
    } finally {
      await gw.close();
    }
  });

  it("locks the account and revokes the reused session family, auditing each action with its cause", async () => {
    const gw = await startIdentityServer({
      dbName: testDatabaseName(import.meta.url),
      env: { ...THRESHOLDS, PORTCULLIS_AUDIT_AUTO_RESPONSE: "failed_logins_per_user:lock_account,refresh_token_reuse:revoke_session", PORTCULLIS_AUDIT_AUTO_RESPONSE_MIN_SEVERITY: "high" },
    });
    try {
      const target = await userWithToken(gw, "auto-target", "user");
      const other = await userWithToken(gw, "auto-other", "user");
      // A refresh-token reuse on another account: its session family is revoked.
      const victim = await userWithToken(gw, "auto-reuse", "user");
      await gw.client(AuthService).refresh({ refreshToken: victim.refreshToken });
      await gw
        .client(AuthService)
        .refresh({ refreshToken: victim.refreshToken })
        .catch(() => undefined);
      await gw.audit.flush();
      const auth = gw.client(AuthService);
      for (let i = 0; i < 3; i++) await auth.login({ username: "auto-target", password: "wrong-password-123" }).catch(() => undefined);
      expect(await gw.gateway.runNow.respondToFindings()).toBeGreaterThanOrEqual(1);

      // Locked: the right password no longer works, and the open session is gone.
      await expectCode(auth.login({ username: "auto-target", password: testPassword("auto-target") }), Code.Unauthenticated);
      await expectCode(gw.client(AuthService, { token: target.token }).whoAmI({}), Code.Unauthenticated);
      await expect(gw.client(AuthService, { token: other.token }).whoAmI({})).resolves.toBeDefined();
      const actions = await gw.auditEvents("audit.auto_response");
      expect(actions).toContainEqual(
        expect.objectContaining({
          outcome: "success",
          target: { kind: "user", id: "auto-target" },
          metadata: expect.objectContaining({ action: "lock_account", finding_kind: "failed_logins_per_user" }),
        }),
      );
      expect(actions).toContainEqual(
        expect.objectContaining({
          target: { kind: "session", id: victim.sessionId },
          metadata: expect.objectContaining({ action: "revoke_session", finding_kind: "refresh_token_reuse", finding_severity: "critical" }),
        }),
      );
      // Acting once per finding: a second evaluation changes nothing.
      await gw.gateway.runNow.respondToFindings();
      expect((await gw.auditEvents("audit.auto_response")).filter((e) => (e["target"] as { id: string }).id === "auto-target")).toHaveLength(1);
      expect(await gw.auditEvents("user.lock")).toContainEqual(expect.objectContaining({ target: { kind: "user", id: target.userId }, reason: expect.stringContaining("failed_logins_per_user") }));

      // The lock is lifted when it expires (simulated by releasing a lock due now).
      await gw.store.db.collection("account_locks").updateMany({}, { $set: { until: new Date(0) } });
      expect(await gw.gateway.runNow.releaseExpiredLocks()).toBe(1);
      await expect(auth.login({ username: "auto-target", password: testPassword("auto-target") })).resolves.toMatchObject({ sessionId: expect.any(String) });
      expect((await gw.auditEvents("user.unlock")).length).toBe(1);
    } finally {
      await gw.close();
    }
  });
});
