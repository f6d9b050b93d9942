import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrpcJsClient } from "../../clients/grpc-js.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";

describe("TLS (ALPN h2 and http/1.1 on one port)", () => {
  let server: TestServer;
  let dir: string;
  let ca: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-tls-"));
    const pems = await generate([{ name: "commonName", value: "localhost" }], {
      keySize: 2048,
      algorithm: "sha256",
      extensions: [
        {
          name: "subjectAltName",
          altNames: [
            { type: 2, value: "localhost" },
            { type: 7, ip: "127.0.0.1" },
          ],
        },
      ],
    });
    ca = pems.cert;
    await writeFile(join(dir, "cert.pem"), pems.cert);
    await writeFile(join(dir, "key.pem"), pems.private, { mode: 0o600 });
    server = await startTestServer({ env: { PORTCULLIS_TLS_CERT: join(dir, "cert.pem"), PORTCULLIS_TLS_KEY: join(dir, "key.pem") } });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves gRPC over HTTP/2 and Connect over HTTP/1.1 with TLS", async () => {
    const baseUrl = `https://localhost:${server.port}`;
    const overGrpc = createClient(Health, createGrpcTransport({ baseUrl, nodeOptions: { ca } }));
    expect((await overGrpc.check({})).status).toBe(Status.SERVING);
    const overHttp1 = createClient(Health, createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }));
    expect((await overHttp1.check({})).status).toBe(Status.SERVING);
  });

  it("serves @grpc/grpc-js with TLS credentials, and refuses plaintext", async () => {
    const secure = createGrpcJsClient(Health, `localhost:${server.port}`, grpc.credentials.createSsl(Buffer.from(ca)));
    const plain = createGrpcJsClient(Health, `localhost:${server.port}`);
    try {
      expect((await secure.check({})).status).toBe(Status.SERVING);
      await expect(plain.check({}, { deadlineMs: 3_000 })).rejects.toMatchObject({ code: expect.any(Number) });
    } finally {
      secure.close();
      plain.close();
    }
  });
});
