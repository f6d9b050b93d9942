import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPortcullisClient, createPortcullisTransport } from "../../clients/connect-node.ts";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { createRateLimiter } from "../../src/access/rate-limiter.ts";
import { createInterceptorChain } from "../../src/interceptors/chain.ts";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";
import { ROLE_TOKENS, roleTokenAuthenticator } from "../helpers/test-principals.ts";

const DRIVER_TEXT = "MongoServerSelectionError: connect ECONNREFUSED 10.1.2.3:27017 (internal topology)";

describe("internal failures", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      deps: { authenticator: { authenticate: () => Promise.reject(new Error(DRIVER_TEXT)) } },
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it("answer INTERNAL with only the request id, and log the cause under that id", async () => {
    const ai = createPortcullisClient(AiService, createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "grpc", token: "any" }));
    const error = await ai.getStatus({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.Internal);
    const info = error?.findDetails(ErrorInfoSchema)[0];
    expect(info?.reason).toBe(ErrorReason.INTERNAL);
    expect(info?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(error?.rawMessage).toBe(`internal error (request id ${info?.requestId})`);
    expect(JSON.stringify(error)).not.toContain("ECONNREFUSED");
    expect(error?.metadata.get("x-request-id")).toBe(info?.requestId);

    const logged = server.logLines().filter((line) => line["requestId"] === info?.requestId);
    expect(logged.some((line) => JSON.stringify(line["err"]).includes("ECONNREFUSED"))).toBe(true);
    expect(logged.some((line) => line["msg"] === "rpc" && line["code"] === "internal")).toBe(true);
  });
});

describe("failures inside a server stream", () => {
  it("are mapped too: messages already sent arrive, then INTERNAL without internals", async () => {
    let text = "";
    const logger = pino(
      { level: "info" },
      new Writable({
        write: (c: Buffer, _e, cb) => {
          text += c.toString();
          cb();
        },
      }),
    );
    const transport = createRouterTransport(
      (router) => {
        router.service(AiService, {
          async *queryStream() {
            yield { textDelta: "first" };
            throw new Error(DRIVER_TEXT);
          },
        });
      },
      {
        router: {
          interceptors: createInterceptorChain({
            logger,
            authenticator: roleTokenAuthenticator,
            freshMfa: { verify: () => Promise.resolve(false) },
            rateLimiter: createRateLimiter({ default: 100, credential: 100, expensive: 100, admin: 100, infrastructure: 100 }),
          }),
        },
      },
    );
    const ai = createClient(AiService, transport);
    const received: unknown[] = [];
    const error = await (async () => {
      for await (const message of ai.queryStream({ prompt: "hi" }, { headers: { authorization: `Bearer ${ROLE_TOKENS.user}` } })) received.push(message);
    })().then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(received).toHaveLength(1);
    expect(error?.code).toBe(Code.Internal);
    expect(error?.rawMessage).not.toContain("ECONNREFUSED");
    expect(text).toContain("ECONNREFUSED");
  });
});
