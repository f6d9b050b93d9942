import { create, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createFileRegistry } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { accessRuleOf } from "../src/access/access-rules.ts";
import { ALL_PERMISSIONS, ROLE_PERMISSIONS } from "../src/access/permissions.ts";
import { createRateLimiter } from "../src/access/rate-limiter.ts";
import { API_SERVICES } from "../src/handlers/routes.ts";
import { createInterceptorChain } from "../src/interceptors/chain.ts";
import type { Principal } from "../src/domain/principal.ts";

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

function chain() {
  return createInterceptorChain({
    logger: pino({ level: "silent" }),
    authenticator: { authenticate: () => Promise.resolve(ownerPrincipal) },
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
    const publicMethods = methods.filter((m) => accessRuleOf(m)?.audience === "public").map((m) => m.name).sort();
    expect(publicMethods).toEqual(["ExchangeApiKey", "GetJwks", "Login", "Refresh"]);
  });

  it("asks for a fresh MFA code where the contract says so", () => {
    const fresh = methods.filter((m) => accessRuleOf(m)?.freshMfa).map((m) => m.name).sort();
    expect(fresh).toEqual(["DisableMfa", "EmergencyRevoke", "RegenerateBackupCodes"]);
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
        router.service(service, { do: () => ((reached = true), {}) } as never);
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
