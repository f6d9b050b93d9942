import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureGrpcurl } from "../helpers/grpcurl.ts";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";

const run = promisify(execFile);

// grpcurl is installed by the test setup with `go install` when Go is present (the README says so).
const grpcurl = await ensureGrpcurl();

describe.skipIf(grpcurl === undefined)("grpcurl against the running server (reflection, no .proto files)", () => {
  let server: TestServer;
  /** `grpcurl -plaintext FLAGS ADDRESS ARGS` */
  const call = async (flags: string[], ...args: string[]) => {
    try {
      const { stdout } = await run(grpcurl!, ["-plaintext", ...flags, `127.0.0.1:${server.port}`, ...args], { timeout: 20_000 });
      return { code: 0, stdout, stderr: "" };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("lists every service", async () => {
    const listed = await call([], "list");
    expect(listed.code).toBe(0);
    expect(listed.stdout.trim().split("\n").sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "portcullis.v1.AiService",
      "portcullis.v1.ApiKeyService",
      "portcullis.v1.AudioStreamService",
      "portcullis.v1.AuditService",
      "portcullis.v1.AuthService",
    ]);
  });

  it("describes services and messages with their documentation comments", async () => {
    const service = await call([], "describe", "portcullis.v1.AuthService");
    expect(service.code).toBe(0);
    expect(service.stdout).toMatch(/rpc Login \( \.portcullis\.v1\.LoginRequest \) returns \( \.portcullis\.v1\.LoginResponse \)/);
    const rule = await call([], "describe", "portcullis.v1.AccessRule");
    expect(rule.stdout).toContain("AccessRule declares who may call an RPC");
    const method = await call([], "describe", "portcullis.v1.AuthService.Login");
    expect(method.stdout).toMatch(/\/\/ .+/);
  });

  it("health-checks the server", async () => {
    const result = await call(["-d", '{"service":""}'], "grpc.health.v1.Health/Check");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ status: "SERVING" });
  });

  it("gets the status codes a caller expects", async () => {
    const unauthenticated = await call(["-d", "{}"], "portcullis.v1.AiService/GetStatus");
    expect(unauthenticated.stderr).toContain("Code: Unauthenticated");
    const unimplemented = await call(["-d", "{}"], "portcullis.v1.AuthService/GetJwks");
    expect(unimplemented.stderr).toContain("Code: Unimplemented");
  });
});
