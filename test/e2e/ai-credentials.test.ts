import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AiService, HealthState } from "../../gen/portcullis/v1/ai_pb.js";
import { Code, failureOf, fakeProviderKey, startAiGateway, startFakes, tokenFor } from "../helpers/ai-gateway.ts";
import { testDatabaseName } from "../helpers/database.ts";
import type { FakeKind, FakeProvider } from "../helpers/fake-providers.ts";
import type { IdentityServer } from "../helpers/identity-server.ts";

const WITHIN_A_SECOND = { timeout: 1_000, interval: 50 };

/** The provider-credential vault: envelope encryption at rest, metadata-only reads, cache invalidation across instances, rotation. */
describe("provider credentials", () => {
  const dbName = testDatabaseName(import.meta.url);
  let a: IdentityServer;
  let b: IdentityServer;
  let fakes: Record<FakeKind, FakeProvider>;
  let adminToken = "";
  let userToken = "";
  const vault = (gw: IdentityServer = a) => gw.client(AiService, { token: adminToken });
  const ask = (gw: IdentityServer, provider = "openai") =>
    gw
      .client(AiService, { token: userToken })
      .query({ provider, prompt: "hi" })
      .then(
        () => "answered",
        (e: unknown) => (e as { code: Code }).code,
      );
  const stored = () => a.store.db.collection("provider_credentials").find({}).toArray();

  beforeAll(async () => {
    fakes = await startFakes();
    a = await startAiGateway(dbName, fakes, { PORTCULLIS_AI_PROBE_INTERVAL_SECONDS: "3600" });
    b = await startAiGateway(dbName, fakes, { PORTCULLIS_AI_PROBE_INTERVAL_SECONDS: "3600" });
    await a.createUser("root-owner", "owner");
    adminToken = await tokenFor(a, "ada", "admin");
    userToken = await tokenFor(a, "uli", "user");
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await fakes?.openai.close();
    await fakes?.anthropic.close();
  });

  it("stores a secret encrypted, returns only metadata, and replaces it under the same id", async () => {
    const secret = fakes.openai.apiKey;
    const put = await vault().putProviderCredential({ provider: "openai", name: "default", secret });
    expect(put.replaced).toBe(false);
    expect(put.credential).toMatchObject({ provider: "openai", name: "default", hint: secret.slice(-4), keyVersion: 1 });
    expect(JSON.stringify(put, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(secret.slice(0, -4));
    const [doc] = await stored();
    expect(doc).toMatchObject({ _id: put.credential!.id, provider: "openai", name: "default", keyVersion: 1 });
    expect(JSON.stringify(doc)).not.toContain(secret.slice(0, -4));
    expect(String(doc!["ciphertext"])).toMatch(/^v1\./);
    expect(String(doc!["wrappedKey"])).toMatch(/^v1\./);

    const again = await vault().putProviderCredential({ provider: "openai", name: "default", secret });
    expect(again.replaced).toBe(true);
    expect(again.credential!.id).toBe(put.credential!.id);
    expect(again.credential!.createdAt).toEqual(put.credential!.createdAt);
    expect(await ask(a)).toBe("answered");
  });

  it("lists metadata only, ordered by provider then name, in pages bound to their filter", async () => {
    await vault().putProviderCredential({ provider: "anthropic", name: "default", secret: fakes.anthropic.apiKey });
    await vault().putProviderCredential({ provider: "anthropic", name: "backup", secret: fakeProviderKey("anthropic") });
    const all = await vault().listProviderCredentials({});
    expect(all.credentials.map((c) => `${c.provider}/${c.name}`)).toEqual(["anthropic/backup", "anthropic/default", "openai/default"]);
    const first = await vault().listProviderCredentials({ provider: "anthropic", pageSize: 1 });
    expect(first.credentials.map((c) => c.name)).toEqual(["backup"]);
    const second = await vault().listProviderCredentials({ provider: "anthropic", pageSize: 1, pageToken: first.nextPageToken });
    expect([second.credentials.map((c) => c.name), second.nextPageToken]).toEqual([["default"], ""]);
    expect((await failureOf(vault().listProviderCredentials({ pageToken: first.nextPageToken }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(vault().listProviderCredentials({ pageToken: "garbage!" }))).code).toBe(Code.InvalidArgument);
  });

  it("refuses bad input, unknown providers and callers without credentials.manage", async () => {
    const cases: Array<[object, Code]> = [
      [{ provider: "", name: "x", secret: "abcdefgh12" }, Code.InvalidArgument],
      [{ provider: "openai", name: "", secret: "abcdefgh12" }, Code.InvalidArgument],
      [{ provider: "openai", name: "x", secret: "" }, Code.InvalidArgument],
      [{ provider: "openai", name: "Bad Name", secret: "abcdefgh12" }, Code.InvalidArgument],
      [{ provider: "openai", name: "x", secret: "two words" }, Code.InvalidArgument],
      [{ provider: "local", name: "x", secret: "abcdefgh12" }, Code.InvalidArgument],
      [{ provider: "nobody", name: "x", secret: "abcdefgh12" }, Code.NotFound],
    ];
    for (const [request, code] of cases) expect((await failureOf(vault().putProviderCredential(request))).code, JSON.stringify(request)).toBe(code);
    const user = a.client(AiService, { token: userToken });
    expect((await failureOf(user.putProviderCredential({ provider: "openai", name: "x", secret: "abcdefgh12" }))).code).toBe(Code.PermissionDenied);
    expect((await failureOf(user.listProviderCredentials({}))).code).toBe(Code.PermissionDenied);
    expect((await failureOf(vault().deleteProviderCredential({ credentialId: "cred_doesnotexistatall0000" }))).code).toBe(Code.NotFound);
    expect((await failureOf(vault().deleteProviderCredential({ credentialId: "../../etc" }))).code).toBe(Code.NotFound);
  });

  it("a new secret put on A is what B sends within a second; a deletion stops B within a second", async () => {
    // B follows the puts of the tests before within a second, then caches the current secret.
    await expect.poll(() => ask(b), WITHIN_A_SECOND).toBe("answered");
    const next = fakeProviderKey("openai");
    fakes.openai.apiKey = next; // the provider now accepts only the new key
    await vault(a).putProviderCredential({ provider: "openai", name: "default", secret: next });
    await expect.poll(() => ask(b), WITHIN_A_SECOND).toBe("answered");
    expect(fakes.openai.completions().at(-1)!.headers["authorization"]).toBe(`Bearer ${next}`);

    const { credentials } = await vault().listProviderCredentials({ provider: "openai" });
    await vault(a).deleteProviderCredential({ credentialId: credentials[0]!.id });
    await expect.poll(() => ask(b), WITHIN_A_SECOND).toBe(Code.Unavailable);
    expect(await ask(a)).toBe(Code.Unavailable);
    await vault(a).putProviderCredential({ provider: "openai", name: "default", secret: next });
    await expect.poll(() => ask(b), WITHIN_A_SECOND).toBe("answered");
  });

  it("GetStatus reports a provider without a stored credential as unhealthy, and healthy once one is stored", async () => {
    const status = await a.client(AiService, { token: userToken }).getStatus({});
    const byName = new Map(status.providers.map((p) => [p.name, p]));
    await expect
      .poll(async () => new Map((await a.client(AiService, { token: userToken }).getStatus({})).providers.map((p) => [p.name, p.health])).get("openai"), { timeout: 5_000 })
      .toBe(HealthState.HEALTHY);
    expect(byName.get("openai-hasty")).toMatchObject({ health: HealthState.UNHEALTHY, detail: expect.stringMatching(/has no credential/) });
    expect(byName.get("local")).toMatchObject({ health: HealthState.HEALTHY, detail: expect.stringMatching(/not a language model/) });
  });

  it("rotation re-wraps every data key under the new version; an instance still on the old version keeps working", async () => {
    expect((await failureOf(vault(a).rotateCredentialEncryption({}))).code).toBe(Code.FailedPrecondition);
    const c = await startAiGateway(dbName, fakes, { PORTCULLIS_CREDENTIAL_KEY_VERSION: "2", PORTCULLIS_AI_PROBE_INTERVAL_SECONDS: "3600" });
    try {
      const before = await stored();
      // Another rotation in progress (its lock held): ABORTED, nothing changed.
      await a.store.db.collection("provider_credential_locks").insertOne({ _id: "rotation" as never, holder: "elsewhere", startedAt: new Date() });
      expect((await failureOf(vault(c).rotateCredentialEncryption({}))).code).toBe(Code.Aborted);
      await a.store.db.collection("provider_credential_locks").deleteOne({ _id: "rotation" as never });

      // A credential that does not decrypt: FAILED_PRECONDITION, nothing changed.
      const victim = before.find((d) => d["name"] === "backup")!;
      const other = before.find((d) => d["name"] === "default" && d["provider"] === "anthropic")!;
      await a.store.db.collection("provider_credentials").updateOne({ _id: victim._id }, { $set: { wrappedKey: other["wrappedKey"] } });
      expect((await failureOf(vault(c).rotateCredentialEncryption({}))).code).toBe(Code.FailedPrecondition);
      expect((await stored()).map((d) => d["keyVersion"])).toEqual(before.map(() => 1));
      await a.store.db.collection("provider_credentials").updateOne({ _id: victim._id }, { $set: { wrappedKey: victim["wrappedKey"] } });

      const rotated = await vault(c).rotateCredentialEncryption({});
      expect(rotated).toMatchObject({ reencryptedCount: before.length, keyVersion: 2 });
      const after = await stored();
      for (const doc of after) {
        const old = before.find((d) => d._id === doc._id)!;
        expect([doc["keyVersion"], doc["ciphertext"] === old["ciphertext"], doc["wrappedKey"] === old["wrappedKey"]]).toEqual([2, true, false]);
      }
      expect((await vault(a).listProviderCredentials({})).credentials.every((cred) => cred.keyVersion === 2)).toBe(true);
      // A (configured with version 1) reads version-2 secrets: a fresh read, as after any change.
      await vault(a).putProviderCredential({ provider: "anthropic", name: "default", secret: fakes.anthropic.apiKey });
      expect(await ask(a, "anthropic")).toBe("answered");
      expect(await ask(c, "openai")).toBe("answered");
      // A wrapped that put under its own version 1: the next rotation takes exactly that one, then none is due.
      expect(await vault(c).rotateCredentialEncryption({})).toMatchObject({ reencryptedCount: 1, keyVersion: 2 });
      expect((await failureOf(vault(c).rotateCredentialEncryption({}))).code).toBe(Code.FailedPrecondition);
    } finally {
      await c.close();
    }
  });

  it("puts, deletions, rotations and first uses are audited with metadata only", async () => {
    for (const type of ["credential.put", "credential.delete", "credential.rotate", "credential.first_use"]) {
      const events = await a.auditEvents(type);
      expect(events.length, type).toBeGreaterThan(0);
      for (const event of events) expect(JSON.stringify(event)).not.toMatch(/sk-proj-|sk-ant-api03-/);
    }
    const rotation = (await a.auditEvents("credential.rotate")).find((e) => e["outcome"] === "success")!;
    expect(rotation["metadata"]).toMatchObject({ key_version: 2 });
    // First use is claimed once per secret version over all instances: each put leads to at most one.
    const firstUses = await a.auditEvents("credential.first_use");
    const perVersion = new Set(firstUses.map((e) => `${(e["target"] as { id: string }).id}:${(e["metadata"] as { updated_at: string }).updated_at}`));
    expect(perVersion.size).toBe(firstUses.length);
  });

  it("a stored secret that does not decrypt (tampered) makes its provider UNAVAILABLE, not INTERNAL", async () => {
    const put = await vault().putProviderCredential({ provider: "openai-hasty", name: "default", secret: fakes.openai.apiKey });
    const other = (await stored()).find((d) => d["provider"] === "openai")!;
    await a.store.db.collection("provider_credentials").updateOne({ _id: put.credential!.id as never }, { $set: { ciphertext: other["ciphertext"], updatedAt: new Date() } });
    await expect.poll(() => ask(a, "openai-hasty"), WITHIN_A_SECOND).toBe(Code.Unavailable);
    const error = await failureOf(a.client(AiService, { token: userToken }).query({ provider: "openai-hasty", prompt: "hi" }));
    expect(error.rawMessage).toMatch(/cannot be decrypted/);
    await vault().deleteProviderCredential({ credentialId: put.credential!.id });
  });
});
