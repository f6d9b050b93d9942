import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { loginWithMfa, startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

describe("EmergencyRevoke", () => {
  let gw: IdentityServer;
  let owner: Awaited<ReturnType<typeof loginWithMfa>>;

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    await gw.createUser("owner-em", "owner");
    owner = await loginWithMfa(gw, "owner-em");
  });
  afterAll(async () => {
    await gw.close();
  });

  it.each(["grpc", "connect"] as const satisfies readonly WireProtocol[])("answers with the id of the audit event that records it (%s)", async (protocol) => {
    const code = owner.backupCodes.pop()!;
    const result = await gw.client(AuthService, { token: owner.accessToken, protocol }).emergencyRevoke({ reason: `drill over ${protocol}`, mfaCode: code });
    expect(result.auditEventId).not.toBe("");
    const stored = (await gw.auditEvents("system.emergency_revoke")).find((e) => e["eventId"] === result.auditEventId);
    expect(stored).toMatchObject({ outcome: "success", reason: `drill over ${protocol}` });
    // The id is the one AuditService reports, so a client can look the event up.
    const queried = await gw.client(AuditService, { token: owner.accessToken, protocol }).queryAuditEvents({ filter: { types: ["system.emergency_revoke"] } });
    expect(queried.events.find((e) => e.id === result.auditEventId)).toMatchObject({ reason: `drill over ${protocol}` });
  });
});
