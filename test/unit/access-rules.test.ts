import { create, setExtension, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { createFileRegistry } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { accessRuleOf } from "../../src/access/access-rules.ts";
import { ALL_PERMISSIONS, ROLE_PERMISSIONS } from "../../src/domain/permissions.ts";
import { createRateLimiter } from "../../src/access/rate-limiter.ts";
import { access, AccessRuleSchema, Audience } from "../../gen/portcullis/v1/options_pb.js";
import { API_SERVICES } from "../../src/handlers/routes.ts";
import { createInterceptorChain } from "../../src/interceptors/chain.ts";
import type { Principal } from "../../src/domain/principal.ts";

const ownerPrincipal: Principal = {
  kind: "user",
  id: "u1",
  userId: "u1",
  displayName: "owner-u1",
  role: "owner",
  permissions: ROLE_PERMISSIONS.owner,
  method: "access_token",
  sessionId: "s1",
};

/** A program credential of an owner: an API key carrying every permission. */
const ownerKeyPrincipal: Principal = { ...ownerPrincipal, kind: "api_key", id: "k1", method: "api_key", sessionId: undefined };

function chain(principal: Principal = ownerPrincipal) {
  return createInterceptorChain({
    logger: pino({ level: "silent" }),
    authenticator: { authenticate: () => Promise.resolve(principal) },
    freshMfa: { verify: () => Promise.resolve(true) },
    rateLimiter: createRateLimiter({ default: 1000, credential: 1000, expensive: 1000, admin: 1000, infrastructure: 1000 }),
  });
}

describe("access rules declared in the proto", () => {
  const methods = API_SERVICES.flatMap((service: DescService) => service.methods);

  it("covers the whole v1 API", () => {
    expect(API_SERVICES.map((s) => s.typeName).sort()).toEqual([
      "portcullis.v1.AiService",
      "portcullis.v1.ApiKeyService",
      "portcullis.v1.AudioStreamService",
      "portcullis.v1.AuditService",
      "portcullis.v1.AuthService",
    ]);
    expect(methods).toHaveLength(53);
  });

  it.each(methods.map((m) => [`${m.parent.typeName}/${m.name}`, m] as const))("%s declares a usable rule", (_name, method) => {
    const rule = accessRuleOf(method);
    expect(rule, "every RPC needs a (portcullis.v1.access) option with a known permission").toBeDefined();
    if (rule?.audience === "permission") expect(ALL_PERMISSIONS.has(rule.permission)).toBe(true);
  });

  it("makes only the credential-presenting and discovery methods public", () => {
    const publicMethods = methods
      .filter((m) => accessRuleOf(m)?.audience === "public")
      .map((m) => m.name)
      .sort();
    expect(publicMethods).toEqual(["ExchangeApiKey", "GetJwks", "Login", "Refresh"]);
  });

  it("asks for a fresh MFA code where the contract says so", () => {
    const fresh = methods
      .filter((m) => accessRuleOf(m)?.freshMfa)
      .map((m) => m.name)
      .sort();
    expect(fresh).toEqual(["DisableMfa", "EmergencyRevoke", "RegenerateBackupCodes"]);
  });

  it("keeps account and session management to a person's session", () => {
    const sessionOnly = methods
      .filter((m) => accessRuleOf(m)?.sessionOnly)
      .map((m) => m.name)
      .sort();
    expect(sessionOnly).toEqual(["BeginMfaEnrollment", "ChangePassword", "ConfirmMfaEnrollment", "DisableMfa", "EmergencyRevoke", "ListSessions", "Logout", "RegenerateBackupCodes", "RevokeSession"]);
    // No scope of the permission table admits a program credential to any of them today.
    expect(methods.filter((m) => accessRuleOf(m)?.programPermission !== undefined)).toEqual([]);
  });

  /** A one-method service built at run time whose rule is `rule`, served through the real chain. */
  function serviceWithRule(rule: Parameters<typeof create<typeof AccessRuleSchema>>[1]) {
    const options = create(MethodOptionsSchema);
    setExtension(options, access, create(AccessRuleSchema, rule));
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "ruled.proto",
        package: "test.ruled",
        syntax: "proto3",
        messageType: [{ name: "Empty" }],
        service: [{ name: "Ruled", method: [{ name: "Do", inputType: ".test.ruled.Empty", outputType: ".test.ruled.Empty", options }] }],
      }),
      () => undefined,
    );
    const service = registry.getService("test.ruled.Ruled")!;
    const call = (principal: Principal) => {
      const transport = createRouterTransport((router) => router.service(service, { do: () => ({}) } as never), { router: { interceptors: chain(principal) } });
      const client = createClient(service, transport) as unknown as { do(req: object, opts: object): Promise<unknown> };
      return client.do({}, { headers: { authorization: "Bearer anything" } }).then(
        () => "ok",
        (e: unknown) => ConnectError.from(e).code,
      );
    };
    return { method: service.methods[0]!, call };
  }

  it("refuses program credentials on a session-only method unless its program_permission is held", async () => {
    const closed = serviceWithRule({ audience: Audience.AUTHENTICATED, sessionOnly: true });
    expect(await closed.call(ownerPrincipal)).toBe("ok");
    expect(await closed.call(ownerKeyPrincipal)).toBe(Code.PermissionDenied);
    expect(await closed.call({ ...ownerKeyPrincipal, method: "exchanged_api_key" })).toBe(Code.PermissionDenied);
    const exempt = serviceWithRule({ audience: Audience.AUTHENTICATED, sessionOnly: true, programPermission: "users.manage" });
    expect(await exempt.call(ownerKeyPrincipal)).toBe("ok");
    expect(await exempt.call({ ...ownerKeyPrincipal, permissions: new Set(["ai.query"]) })).toBe(Code.PermissionDenied);
    // Contradictory or unknown settings make the rule unusable: denied to everyone.
    for (const rule of [
      { audience: Audience.PUBLIC, sessionOnly: true },
      { audience: Audience.AUTHENTICATED, programPermission: "users.manage" },
      { audience: Audience.AUTHENTICATED, sessionOnly: true, programPermission: "root" },
    ]) {
      const broken = serviceWithRule(rule);
      expect(accessRuleOf(broken.method), JSON.stringify(rule)).toBeUndefined();
      expect(await broken.call(ownerPrincipal)).toBe(Code.PermissionDenied);
    }
  });

  it("denies a method that declares no rule, even to an owner (fail closed)", async () => {
    // A service built at run time, as a method someone forgot to annotate would look.
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "unruled.proto",
        package: "test.unruled",
        syntax: "proto3",
        messageType: [{ name: "Empty" }],
        service: [{ name: "Unruled", method: [{ name: "Do", inputType: ".test.unruled.Empty", outputType: ".test.unruled.Empty" }] }],
      }),
      () => undefined,
    );
    const service = registry.getService("test.unruled.Unruled")!;
    expect(accessRuleOf(service.methods[0]!)).toBeUndefined();
    let reached = false;
    const transport = createRouterTransport(
      (router) => {
        router.service(service, {
          do: () => {
            reached = true;
            return {};
          },
        } as never);
      },
      { router: { interceptors: chain() } },
    );
    const client = createClient(service, transport) as unknown as { do(req: object, opts: object): Promise<unknown> };
    const error = await client.do({}, { headers: { authorization: "Bearer anything" } }).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.PermissionDenied);
    expect(reached).toBe(false);
  });
});
