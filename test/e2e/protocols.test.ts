import { Code, ConnectError } from "@connectrpc/connect";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPortcullisClient, createPortcullisTransport, type WireProtocol } from "../../clients/connect-node.ts";
import { createGrpcJsClient } from "../../clients/grpc-js.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";
import { ROLE_TOKENS, roleTokenAuthenticator } from "../helpers/test-principals.ts";

// One port, three protocols, HTTP/1.1 and HTTP/2: every combination a client may use.
const CONNECT_CLIENTS: Array<{ name: string; protocol: WireProtocol; httpVersion: "1.1" | "2" }> = [
  { name: "gRPC (HTTP/2)", protocol: "grpc", httpVersion: "2" },
  { name: "Connect (HTTP/2)", protocol: "connect", httpVersion: "2" },
  { name: "Connect (HTTP/1.1)", protocol: "connect", httpVersion: "1.1" },
  { name: "gRPC-Web (HTTP/2)", protocol: "grpc-web", httpVersion: "2" },
  { name: "gRPC-Web (HTTP/1.1)", protocol: "grpc-web", httpVersion: "1.1" },
];

describe("one port serves gRPC, gRPC-Web and Connect", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ deps: { authenticator: roleTokenAuthenticator } });
  });
  afterAll(async () => {
    await server.close();
  });

  describe.each(CONNECT_CLIENTS)("connect-node client over $name", ({ protocol, httpVersion }) => {
    const transport = (token?: string) => createPortcullisTransport({ baseUrl: server.baseUrl, protocol, httpVersion, ...(token ? { token } : {}) });

    it("health-checks the server", async () => {
      const health = createPortcullisClient(Health, transport());
      expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      expect((await health.check({ service: "portcullis.v1.AuthService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      await expect(health.check({ service: "no.such.Service" })).rejects.toMatchObject({ code: Code.NotFound });
    });

    it("answers UNAUTHENTICATED without credentials and with bad ones", async () => {
      const ai = createPortcullisClient(AiService, transport());
      await expect(ai.getStatus({})).rejects.toMatchObject({ code: Code.Unauthenticated });
      const forged = createPortcullisClient(AiService, transport("eyJhbGciOiJub25lIn0.e30."));
      await expect(forged.getStatus({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    });

    it("reaches a not-yet-implemented public method as UNIMPLEMENTED", async () => {
      const auth = createPortcullisClient(AuthService, transport());
      await expect(auth.getJwks({})).rejects.toMatchObject({ code: Code.Unimplemented });
    });

    it("passes an authorised caller through to the handler", async () => {
      const ai = createPortcullisClient(AiService, transport(ROLE_TOKENS.user));
      await expect(ai.getStatus({})).rejects.toMatchObject({ code: Code.Unimplemented });
    });

    it("applies the same rules to server streams", async () => {
      const anonymous = createPortcullisClient(AiService, transport());
      const consume = async (stream: AsyncIterable<unknown>) => {
        for await (const _ of stream) void _;
      };
      await expect(consume(anonymous.watchJob({ jobId: "j1" }))).rejects.toMatchObject({ code: Code.Unauthenticated });
      const user = createPortcullisClient(AiService, transport(ROLE_TOKENS.user));
      await expect(consume(user.watchJob({ jobId: "j1" }))).rejects.toMatchObject({ code: Code.Unimplemented });
    });

    it("echoes a request id on every answer", async () => {
      const error = await createPortcullisClient(AiService, transport())
        .getStatus({}, { headers: { "x-request-id": "trace-0123456789" } })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(error?.metadata.get("x-request-id")).toBe("trace-0123456789");
    });
  });

  describe("@grpc/grpc-js client typed from the generated descriptors", () => {
    it("health-checks the server and gets the right status codes", async () => {
      const address = `127.0.0.1:${server.port}`;
      const health = createGrpcJsClient(Health, address);
      const ai = createGrpcJsClient(AiService, address);
      const auth = createGrpcJsClient(AuthService, address);
      try {
        expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
        await expect(ai.getStatus({})).rejects.toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
        await expect(auth.getJwks({})).rejects.toMatchObject({ code: GrpcStatus.UNIMPLEMENTED });
        await expect(ai.getStatus({}, { metadata: { authorization: `Bearer ${ROLE_TOKENS.user}` } })).rejects.toMatchObject({
          code: GrpcStatus.UNIMPLEMENTED,
        });
        const updates = health.watch({ service: "" });
        for await (const update of updates) {
          expect(update.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
          break;
        }
      } finally {
        health.close();
        ai.close();
        auth.close();
      }
    });
  });
});
