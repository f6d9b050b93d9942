import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

describe("cli rotate-signing-key", () => {
  let gw: IdentityServer;
  let dir: string;
  const dbName = testDatabaseName(import.meta.url);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-rotate-"));
    gw = await startIdentityServer({ dbName, keyFile: join(dir, "keys.json") });
    await gw.createUser("rita", "user");
  });
  afterAll(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("rotates the running gateway's key: new tokens get the new kid, old tokens keep working", async () => {
    const login = () => gw.client(AuthService).login({ username: "rita", password: testPassword("rita") });
    const before = await login();
    const oldKid = decodeProtectedHeader(before.accessToken).kid;

    const result = spawnSync(process.execPath, ["src/cli/main.ts", "rotate-signing-key"], {
      cwd: new URL("../..", import.meta.url),
      env: { PATH: process.env["PATH"], HOME: process.env["HOME"], MONGODB_URI: inject("mongodbUri"), PORTCULLIS_DB_NAME: dbName, PORTCULLIS_KEY_FILE: join(dir, "keys.json") },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const newKid = /-> (\S+)/.exec(result.stdout)?.[1];
    expect(newKid).toBeDefined();
    expect(newKid).not.toBe(oldKid);

    await expect.poll(async () => decodeProtectedHeader((await login()).accessToken).kid, { timeout: 3_000 }).toBe(newKid);
    await expect(gw.client(AuthService, { token: before.accessToken }).whoAmI({})).resolves.toBeDefined();
    const jwks = await gw.client(AuthService).getJwks({});
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    expect((await gw.auditEvents("system.signing_key_rotate")).length).toBe(1);
  });
});
