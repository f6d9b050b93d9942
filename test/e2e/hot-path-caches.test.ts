// The hot path answers from memory: what each instance holds (users' profiles and states, MFA state,
// revoked sessions, verified tokens, API keys) must follow every change made on any instance within a
// second, and the calls that read it must not reach the database.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CommandStartedEvent } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AudioStreamService } from "../../gen/portcullis/v1/audio_stream_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { loginWithMfa, startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";
import { noteSecret } from "../helpers/secret-capture.ts";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok" as const,
    (e: unknown) => ConnectError.from(e).code,
  );
// The promise: a change on one instance is seen by every instance within 1 second.
const WITHIN = { timeout: 1_000, interval: 50 };

/** Database commands a request made on its own behalf: point reads by id and writes (the change feed's reads excluded). */
function requestPathCommands(commands: readonly CommandStartedEvent[]): CommandStartedEvent[] {
  return commands.filter((c) => {
    const collection = String(c.command[c.commandName]);
    // Background readers, not a call's: the change feed's marks, the job workers' poll of due tickets.
    if (collection === "change_marks" || collection === "job_tickets") return false;
    if (["insert", "update", "delete", "findAndModify"].includes(c.commandName)) return collection !== "audit_events";
    const filter = c.command["filter"] as Record<string, unknown> | undefined;
    return c.commandName === "find" && filter !== undefined && "_id" in filter;
  });
}

describe("what an instance holds in memory", () => {
  let a: IdentityServer;
  let b: IdentityServer;
  let keys: string;
  const whoAmI = (gw: IdentityServer, token: string) => gw.client(AuthService, { token }).whoAmI({});

  beforeAll(async () => {
    keys = await mkdtemp(join(tmpdir(), "portcullis-keys-"));
    const dbName = testDatabaseName(import.meta.url);
    a = await startIdentityServer({ dbName, keyFile: join(keys, "a.json") });
    b = await startIdentityServer({ dbName, keyFile: join(keys, "b.json") });
    await a.createUser("olga", "owner");
    await a.createUser("adam", "admin");
    await a.createUser("mona", "user");
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await rm(keys, { recursive: true, force: true });
  });

  it("answers WhoAmI, GetTokenInfo, GetJwks, VerifyApiKey, ListModels, GetStatus and ListVoices without a database round trip", async () => {
    const { accessToken } = await a.client(AuthService).login({ username: "olga", password: testPassword("olga") });
    const { secret } = await b.client(ApiKeyService, { token: accessToken }).createApiKey({ name: "round trips", scopes: ["keys.read", "keys.verify", "ai.status"] });
    noteSecret(secret);
    const calls = {
      "WhoAmI (JWT)": () => whoAmI(b, accessToken),
      "WhoAmI (API key)": () => whoAmI(b, secret),
      GetTokenInfo: () => b.client(AuthService, { token: accessToken }).getTokenInfo({}),
      GetJwks: () => b.client(AuthService, { token: accessToken }).getJwks({}),
      VerifyApiKey: () => b.client(ApiKeyService, { token: secret }).verifyApiKey({ apiKey: secret }),
      ListModels: () => b.client(AiService, { token: secret }).listModels({}),
      GetStatus: () => b.client(AiService, { token: secret }).getStatus({}),
      ListVoices: () => b.client(AudioStreamService, { token: accessToken }).listVoices({}),
    };
    // The first call of each may load what this instance has not seen yet (the key, say).
    for (const call of Object.values(calls)) await call();
    // Each call's round trips, named ("find users"), so that a failure says what was read.
    const roundTrips: Record<string, string[]> = {};
    for (const [name, call] of Object.entries(calls)) {
      const before = b.databaseCommands().length;
      for (let i = 0; i < 5; i++) await call();
      roundTrips[name] = requestPathCommands(b.databaseCommands().slice(before)).map((c) => `${c.commandName} ${String(c.command[c.commandName])}`);
    }
    expect(roundTrips).toEqual(Object.fromEntries(Object.keys(calls).map((name) => [name, []])));
  });

  it("shows a user demoted, given a new address, or disabled on another instance in WhoAmI within a second", async () => {
    const owner = a.client(AuthService, { token: (await a.client(AuthService).login({ username: "olga", password: testPassword("olga") })).accessToken });
    const adam = await b.client(AuthService).login({ username: "adam", password: testPassword("adam") });
    const first = await whoAmI(b, adam.accessToken);
    expect(first.user?.role).toBe(Role.ADMIN);
    expect(first.permissions).toContain("users.manage");

    await owner.updateUser({ userId: adam.user!.id, role: Role.USER, email: "adam@example.com" });
    await expect.poll(async () => (await whoAmI(b, adam.accessToken)).user?.email, WITHIN).toBe("adam@example.com");
    const demoted = await whoAmI(b, adam.accessToken);
    expect(demoted.user?.role).toBe(Role.USER);
    expect(demoted.principal?.role).toBe(Role.USER);
    expect(demoted.permissions).not.toContain("users.manage");

    await owner.updateUser({ userId: adam.user!.id, disabled: true });
    await expect.poll(() => codeOf(whoAmI(b, adam.accessToken)), WITHIN).toBe(Code.Unauthenticated);
  });

  it("shows MFA turned on and off on another instance in WhoAmI within a second, and a new login's time", async () => {
    await a.createUser("tess", "user");
    const onB = await b.client(AuthService).login({ username: "tess", password: testPassword("tess") });
    expect((await whoAmI(b, onB.accessToken)).mfaEnabled).toBe(false);

    const enrolled = await loginWithMfa(a, "tess");
    await expect.poll(async () => (await whoAmI(b, onB.accessToken)).mfaEnabled, WITHIN).toBe(true);
    expect((await whoAmI(b, onB.accessToken)).user?.mfaEnabled).toBe(true);

    await a.client(AuthService, { token: enrolled.accessToken }).disableMfa({ mfaCode: enrolled.backupCodes[0]! });
    await expect.poll(async () => (await whoAmI(b, onB.accessToken)).mfaEnabled, WITHIN).toBe(false);
    // On the instance that made the change, at once.
    expect((await whoAmI(a, enrolled.accessToken)).mfaEnabled).toBe(false);

    // lastLoginAt moves without updatedAt: a login on A shows on B too.
    const seen = (await whoAmI(b, onB.accessToken)).user?.lastLoginAt;
    await new Promise((resolve) => setTimeout(resolve, 10));
    await a.client(AuthService).login({ username: "tess", password: testPassword("tess") });
    await expect.poll(async () => (await whoAmI(b, onB.accessToken)).user?.lastLoginAt?.nanos !== seen?.nanos, WITHIN).toBe(true);
  });

  it("refuses a token it verified before on the next call once its session is revoked, here at once and elsewhere within a second", async () => {
    const session = await a.client(AuthService).login({ username: "mona", password: testPassword("mona") });
    // Both instances have verified (and kept) the token.
    expect(await codeOf(whoAmI(a, session.accessToken))).toBe("ok");
    expect(await codeOf(whoAmI(b, session.accessToken))).toBe("ok");
    await a.client(AuthService, { token: session.accessToken }).logout({});
    expect(await codeOf(whoAmI(a, session.accessToken))).toBe(Code.Unauthenticated);
    await expect.poll(() => codeOf(whoAmI(b, session.accessToken)), WITHIN).toBe(Code.Unauthenticated);
  });

  it("shows an API key renamed on another instance as the principal's display name within a second", async () => {
    const { accessToken } = await a.client(AuthService).login({ username: "olga", password: testPassword("olga") });
    const created = await a.client(ApiKeyService, { token: accessToken }).createApiKey({ name: "before", scopes: ["keys.read"] });
    noteSecret(created.secret);
    expect((await whoAmI(b, created.secret)).principal?.displayName).toBe("before");
    await a.client(ApiKeyService, { token: accessToken }).updateApiKey({ keyId: created.apiKey!.id, name: "after" });
    await expect.poll(async () => (await whoAmI(b, created.secret)).principal?.displayName, WITHIN).toBe("after");
  });
});
