import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createPortcullisClient, createPortcullisTransport } from "../../clients/connect-node.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { startTestServer } from "../helpers/test-server.ts";
import { roleTokenAuthenticator } from "../helpers/test-principals.ts";

describe("graceful shutdown of the server", () => {
  it("lets an in-flight call finish, then refuses new connections", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = await startTestServer({
      env: { PORTCULLIS_SHUTDOWN_TIMEOUT_MS: "5000" },
      deps: {
        authenticator: {
          // A slow step inside the call, so it is still running when shutdown begins.
          authenticate: async (credential, client) => {
            await gate;
            return roleTokenAuthenticator.authenticate(credential, client);
          },
        },
      },
    });
    const ai = createPortcullisClient(AiService, createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "grpc", token: "test-token-user-5f1c" }));
    const inFlight = ai.getStatus({}).then(
      () => Code.Unknown,
      (e: unknown) => ConnectError.from(e).code,
    );
    await expect.poll(() => server.server.inFlight).toBe(1);
    const closed = server.close();
    setTimeout(release, 200);
    expect(await inFlight).toBe(Code.Unimplemented); // it reached its handler: not cut off
    await closed;
    const fresh = createPortcullisClient(Health, createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "connect", httpVersion: "1.1" }));
    await expect(fresh.check({})).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("reports NOT_SERVING to watchers at once and ends open streams at the deadline", async () => {
    const server = await startTestServer({ env: { PORTCULLIS_SHUTDOWN_TIMEOUT_MS: "300" } });
    const health = createPortcullisClient(Health, createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "grpc" }));
    const seen: Status[] = [];
    const watching = (async () => {
      for await (const update of health.watch({ service: "" })) {
        seen.push(update.status);
        if (seen.length === 1) void server.close();
      }
    })().then(
      () => "ended",
      (e: unknown) => ConnectError.from(e).code,
    );
    const started = Date.now();
    const outcome = await watching;
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect(["ended", Code.Unavailable]).toContain(outcome);
    expect(Date.now() - started).toBeLessThan(3_000);
    await server.close();
  });
});
