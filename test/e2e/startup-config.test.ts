import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

/** `node src/main.ts` with `env`: what an operator sees when the configuration is wrong. */
function start(env: Record<string, string>) {
  return spawnSync(process.execPath, ["src/main.ts"], {
    cwd: new URL("../..", import.meta.url),
    env: { PATH: process.env["PATH"], ...env },
    encoding: "utf8",
    timeout: 20_000,
  });
}

describe("start-up with a bad configuration", () => {
  it("stops the server with one clear line naming a bad variable", () => {
    const result = start({ PORTCULLIS_PORT: "not-a-port" });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual(["portcullis: configuration error: PORTCULLIS_PORT: must be a whole number from 0 to 65535"]);
  });

  // Checked against the domain's key format and finding kinds (app/gateway-settings.ts), not by the
  // configuration itself, and still refused before anything starts.
  it("stops the same way for a value only the domain can judge", () => {
    const prefix = start({ PORTCULLIS_API_KEY_PREFIX: "Key!" });
    expect(prefix.status).toBe(1);
    expect(prefix.stderr.trim().split("\n")).toEqual(["portcullis: configuration error: PORTCULLIS_API_KEY_PREFIX: must be 1 to 12 lower-case letters or digits, starting with a letter"]);
    const rule = start({ PORTCULLIS_AUDIT_AUTO_RESPONSE: "refresh_token_reuse:lock_account" });
    expect(rule.status).toBe(1);
    expect(rule.stderr.trim().split("\n")).toEqual(["portcullis: configuration error: PORTCULLIS_AUDIT_AUTO_RESPONSE: lock_account cannot answer refresh_token_reuse"]);
  });
});
