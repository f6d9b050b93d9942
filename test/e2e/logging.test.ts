import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPortcullisClient, createPortcullisTransport } from "../../clients/connect-node.ts";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { createLogger, createRpcLog } from "../../src/log/logger.ts";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";
import { ROLE_TOKENS, roleTokenAuthenticator } from "../helpers/test-principals.ts";

// Values shaped like the secrets a caller sends; none may reach the log.
const SECRETS = {
  password: "correct-horse-battery-staple-91",
  bearer: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtbGVhaw",
  apiKey: "sk_k1a2b3_c0ffeec0ffeec0ffeec0ffeec0ffee",
  totp: "492039",
};

describe("logging", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ deps: { authenticator: roleTokenAuthenticator } });
  });
  afterAll(async () => {
    await server.close();
  });

  it("writes one line per RPC with method, code, duration, principal and request id", async () => {
    const ai = createPortcullisClient(AiService, createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "grpc", token: ROLE_TOKENS.admin }));
    await ai.getStatus({}, { headers: { "x-request-id": "log-test-request-1" } }).catch(() => undefined);
    const lines = server.logLines().filter((line) => line["requestId"] === "log-test-request-1");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: "rpc",
      method: "portcullis.v1.AiService/GetStatus",
      code: "unimplemented",
      principal: "user:admin-1",
      ip: "127.0.0.1",
    });
    expect(typeof lines[0]?.["durationMs"]).toBe("number");
  });

  it("never logs passwords, tokens, API keys or TOTP codes", async () => {
    const transport = createPortcullisTransport({ baseUrl: server.baseUrl, protocol: "connect" });
    const auth = createPortcullisClient(AuthService, transport);
    await auth.login({ username: "alice", password: SECRETS.password, mfaCode: SECRETS.totp }).catch(() => undefined);
    await auth.getJwks({}, { headers: { authorization: `Bearer ${SECRETS.bearer}` } }).catch(() => undefined);
    await auth.getJwks({}, { headers: { "x-api-key": SECRETS.apiKey } }).catch(() => undefined);
    await auth.disableMfa({ mfaCode: SECRETS.totp }, { headers: { authorization: `Bearer ${ROLE_TOKENS.user}`, "x-mfa-code": SECRETS.totp } }).catch(() => undefined);
    const text = server.logText();
    expect(text).toContain("portcullis.v1.AuthService/Login");
    for (const secret of [...Object.values(SECRETS), ROLE_TOKENS.user]) expect(text).not.toContain(secret);
  });

  it("redacts secret-named fields in anything logged", () => {
    let text = "";
    const logger = createLogger({
      level: "info",
      destination: new Writable({
        write: (c: Buffer, _e, cb) => {
          text += c.toString();
          cb();
        },
      }),
    });
    logger.info(
      { password: SECRETS.password, request: { refreshToken: SECRETS.bearer, headers: { authorization: `Bearer ${SECRETS.bearer}`, "x-api-key": SECRETS.apiKey } }, mfaCode: SECRETS.totp },
      "x",
    );
    // Deeper than two levels, inside arrays, in any letter case and in an error's own fields.
    logger.warn(
      {
        session: { Token: SECRETS.bearer },
        batch: [{ calls: [{ meta: { headers: { "X-Api-Key": SECRETS.apiKey } } }] }],
        err: Object.assign(new Error("refused"), { detail: { password: SECRETS.password } }),
        nested: { cause: Object.assign(new Error("inner"), { apiKey: SECRETS.apiKey }) },
        instance: new (class Credentials {
          secret = SECRETS.bearer;
        })(),
        serialised: { toJSON: () => ({ password: SECRETS.password }) },
        at: new Date(0),
      },
      "y",
    );
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
    const lines = text
      .trim()
      .split("\n")
      // biome-ignore lint/suspicious/noExplicitAny: log lines are arbitrary JSON, read here by path.
      .map((line) => JSON.parse(line) as Record<string, any>);
    expect(lines[0]!["request"].headers).toEqual({ authorization: "[redacted]", "x-api-key": "[redacted]" });
    expect(lines[1]!["batch"][0].calls[0].meta.headers["X-Api-Key"]).toBe("[redacted]");
    expect(lines[1]!["session"]).toEqual({ Token: "[redacted]" });
    expect(lines[1]!["err"]).toMatchObject({ message: "refused", detail: { password: "[redacted]" } });
    expect(lines[1]!["nested"].cause).toMatchObject({ message: "inner", apiKey: "[redacted]" });
    expect(lines[1]!["instance"]).toEqual({ secret: "[redacted]" });
    expect(lines[1]!["serialised"]).toEqual({ password: "[redacted]" });
    expect(lines[1]!["at"]).toBe("1970-01-01T00:00:00.000Z");
  });

  it("the access line, written directly, is the line pino writes; a level above info drops it", () => {
    const capture = () => {
      const lines: string[] = [];
      const destination = new Writable({
        write: (c: Buffer, _e, cb) => {
          lines.push(...c.toString().trim().split("\n"));
          cb();
        },
      });
      return { lines, destination };
    };
    const info = capture();
    const logger = createLogger({ level: "info", destination: info.destination });
    const fields = { requestId: "line-test-1", method: "portcullis.v1.AuthService/WhoAmI", code: "ok", durationMs: 0.42, principal: 'user:a"b', ip: "::1" };
    logger.info(fields, "rpc");
    createRpcLog(logger)(fields);
    createRpcLog(logger)({ ...fields, principal: undefined, ip: undefined });
    const [byPino, direct, anonymous] = info.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    // Written a moment apart: the times may differ by a millisecond, their form may not.
    expect(direct!["time"]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect({ ...direct, time: "" }).toEqual({ ...byPino, time: "" });
    expect(Object.keys(direct!)).toEqual(Object.keys(byPino!));
    expect(anonymous).not.toHaveProperty("principal");
    expect(anonymous).not.toHaveProperty("ip");

    const warn = capture();
    createRpcLog(createLogger({ level: "warn", destination: warn.destination }))(fields);
    expect(warn.lines).toEqual([]);
  });
});
