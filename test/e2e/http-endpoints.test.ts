import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";

describe("plain HTTP endpoints on the RPC port", () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("GET /healthz answers 200 while serving and 503 when the database is unreachable", async () => {
    server = await startTestServer();
    const ok = await fetch(`${server.baseUrl}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: "serving" });
    expect(ok.headers.get("cache-control")).toBe("no-store");
    server.health.setDatabaseReachable(false);
    const down = await fetch(`${server.baseUrl}/healthz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: "not_serving" });
  });

  it("answers CORS preflights only for configured origins", async () => {
    server = await startTestServer({ env: { PORTCULLIS_CORS_ORIGINS: "https://console.example.com" } });
    const preflight = (origin: string) =>
      fetch(`${server!.baseUrl}/portcullis.v1.AuthService/Login`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version" },
      });
    const allowed = await preflight("https://console.example.com");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://console.example.com");
    expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization");
    const other = await preflight("https://evil.example.com");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers unknown paths with 404 and no internals", async () => {
    server = await startTestServer();
    const res = await fetch(`${server.baseUrl}/nope`);
    expect(res.status).toBe(404);
  });
});
