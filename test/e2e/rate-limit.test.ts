import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPortcullisClient, createPortcullisTransport } from "../../clients/connect-node.ts";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";
import { ROLE_TOKENS, roleTokenAuthenticator } from "../helpers/test-principals.ts";

describe("rate limits", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      env: { PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE: "5", PORTCULLIS_RATE_LIMIT_DEFAULT: "3" },
      deps: { authenticator: roleTokenAuthenticator },
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it("refuses calls over the class budget with RESOURCE_EXHAUSTED and a retry hint", async () => {
    const health = createPortcullisClient(Health, createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "grpc" }));
    for (let i = 0; i < 5; i++) await health.check({});
    const error = await health.check({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.ResourceExhausted);
    const info = error?.findDetails(ErrorInfoSchema)[0];
    expect(info?.reason).toBe(ErrorReason.RATE_LIMITED);
    expect(Number(info?.retryAfterMs)).toBeGreaterThan(0);
  });

  it("counts each principal separately, and streams as well as unary calls", async () => {
    const transport = (token: string) => createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "connect", token });
    const user = createPortcullisClient(AiService, transport(ROLE_TOKENS.user));
    const admin = createPortcullisClient(AiService, transport(ROLE_TOKENS.admin));
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => Code.Unknown,
        (e: unknown) => ConnectError.from(e).code,
      );
    const drain = async (stream: AsyncIterable<unknown>) => {
      for await (const _ of stream) void _;
    };
    for (let i = 0; i < 3; i++) expect(await codeOf(user.getJob({ jobId: "x" }))).toBe(Code.Unimplemented);
    expect(await codeOf(user.getJob({ jobId: "x" }))).toBe(Code.ResourceExhausted);
    expect(await codeOf(drain(user.watchJob({ jobId: "x" })))).toBe(Code.ResourceExhausted);
    expect(await codeOf(admin.getJob({ jobId: "x" }))).toBe(Code.Unimplemented);
  });
});
