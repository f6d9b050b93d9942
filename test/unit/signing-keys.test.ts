import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAccessTokenService } from "../../src/domain/tokens/access-tokens.ts";
import { createSigningKeySet, type SigningKeySet } from "../../src/domain/tokens/signing-keys.ts";
import { createSigningKey } from "../../src/domain/tokens/signing-key.ts";
import { appendSigningKey, loadOrCreateKeyring, signingKeyFile } from "../../src/keys/keyring.ts";
import { createSigningKeysStore } from "../../src/store/signing-keys-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

const TTL_MS = 15 * 60 * 1000;
const LEEWAY_MS = 30 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

describe("signing keys", () => {
  let dir: string;
  let clock: number;
  const now = () => clock;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-sk-"));
    clock = Date.now();
    await database.store.db.collection("signing_keys").deleteMany({});
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const published = () => database.store.db.collection("signing_keys").find({}).toArray();

  /** One gateway instance: its own key file, the shared database. */
  async function instance(name: string, options: { rotateAfterMs?: number } = {}): Promise<SigningKeySet> {
    const keyFile = join(dir, `${name}.json`);
    return createSigningKeySet({
      keys: (await loadOrCreateKeyring(keyFile)).signingKeys,
      keyFile: signingKeyFile(keyFile),
      store: createSigningKeysStore(database.store),
      accessTokenTtlMs: TTL_MS,
      leewayMs: LEEWAY_MS,
      now,
      ...options,
    });
  }

  const tokensFor = (keys: SigningKeySet) => createAccessTokenService({ keys, issuer: "iss", audience: "aud", ttlMs: TTL_MS, leewayMs: LEEWAY_MS, now });
  const issue = (keys: SigningKeySet) => tokensFor(keys).issue({ userId: "u", sessionId: "s", role: "user", permissions: [], amr: "password" });

  it("verifies a token of an instance that started after its last refresh, refreshing once for the unknown kid", async () => {
    const a = await instance("a");
    const b = await instance("b"); // published after a's only refresh
    expect(a.publicKey(b.current().kid)).toBeUndefined();
    const { token } = await issue(b);
    await expect(tokensFor(a).verify(token)).resolves.toMatchObject({ sub: "u" });
    // Made-up kids share a refresh (spaced 250 ms apart) and still fail.
    await expect(Promise.all(["x".repeat(43), "y".repeat(43), "z".repeat(43)].map((kid) => a.publicKeyOrRefresh(kid)))).resolves.toEqual([undefined, undefined, undefined]);
    await expect(a.publicKeyOrRefresh("not-a-thumbprint")).resolves.toBeUndefined();
  });

  it("publishes the public key once, however often an instance starts", async () => {
    const first = await instance("a");
    const [before] = await published();
    await instance("a");
    await instance("a");
    const after = await published();
    expect(after).toEqual([before]);
    expect(after[0]?._id).toBe(first.current().kid);
    expect(after[0]?.["publicJwk"]).toMatchObject({ kty: "OKP", crv: "Ed25519", kid: first.current().kid });
    expect(after[0]?.["publicJwk"]).not.toHaveProperty("d");
    expect(after[0]).not.toHaveProperty("verifyUntil");
  });

  it("lets two instances with their own key files verify each other's tokens", async () => {
    const a = await instance("a");
    const b = await instance("b");
    expect(a.current().kid).not.toBe(b.current().kid);
    // A learns of B's key on its next refresh, as the poller would make it.
    expect(a.publicKey(b.current().kid)).toBeUndefined();
    await a.refresh();

    await expect(tokensFor(b).verify((await issue(a)).token)).resolves.toMatchObject({ sub: "u" });
    await expect(tokensFor(a).verify((await issue(b)).token)).resolves.toMatchObject({ sub: "u" });
    expect(
      a
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([a.current().kid, b.current().kid].sort());
  });

  it("rotates: the new key signs, the old verifies until verifyUntil, the key file keeps both at 0600", async () => {
    const a = await instance("a");
    const b = await instance("b");
    const oldKid = a.current().kid;
    const oldToken = (await issue(a)).token;

    const { kid } = await a.rotate();
    expect(kid).not.toBe(oldKid);
    expect(a.current().kid).toBe(kid);
    const newToken = (await issue(a)).token;
    expect(JSON.parse(Buffer.from(newToken.split(".")[0]!, "base64url").toString()).kid).toBe(kid);

    const file = join(dir, "a.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const content = JSON.parse(await readFile(file, "utf8"));
    expect(content.signingKeys.map((k: { kid: string }) => k.kid)).toEqual([kid, oldKid]);
    expect((await loadOrCreateKeyring(file)).signingKeys[0]?.kid).toBe(kid);

    const doc = (await published()).find((d) => d._id === (oldKid as never));
    expect(doc?.["verifyUntil"]).toEqual(new Date(clock + TTL_MS + LEEWAY_MS));

    // Instance B learns both the new key and the retirement from the database.
    await b.refresh();
    await expect(tokensFor(b).verify(newToken)).resolves.toMatchObject({ sub: "u" });
    await expect(tokensFor(b).verify(oldToken)).resolves.toMatchObject({ sub: "u" });
    expect(b.publicKey(oldKid)).toBeDefined();

    clock += TTL_MS + LEEWAY_MS + 1;
    expect(a.publicKey(oldKid)).toBeUndefined();
    expect(b.publicKey(oldKid)).toBeUndefined();
    expect(b.jwks().keys.map((k) => k.kid)).not.toContain(oldKid);
    await b.refresh();
    expect(
      b
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([kid, b.current().kid].sort());

    // Restarting A keeps the new key current and the old one retired.
    const restarted = await instance("a");
    expect(restarted.current().kid).toBe(kid);
    expect((await published()).find((d) => d._id === (oldKid as never))?.["verifyUntil"]).toEqual(doc?.["verifyUntil"]);
  });

  it("rotates at start when the newest local key is older than rotateAfterMs, and later on refresh", async () => {
    const original = (await loadOrCreateKeyring(join(dir, "a.json"))).signingKeys[0]!.kid;
    clock = Date.now() + 31 * DAY_MS;
    const a = await instance("a");
    expect(a.current().kid).not.toBe(original);
    expect((await loadOrCreateKeyring(join(dir, "a.json"))).signingKeys.map((k) => k.kid)).toEqual([a.current().kid, original]);
    // Not again at the next refresh: the new key is young.
    await a.refresh();
    const second = a.current().kid;
    expect((await loadOrCreateKeyring(join(dir, "a.json"))).signingKeys).toHaveLength(2);

    clock += 2 * DAY_MS;
    const b = await instance("a", { rotateAfterMs: DAY_MS });
    expect(b.current().kid).not.toBe(second);
    const c = await instance("c", { rotateAfterMs: DAY_MS });
    const cKid = c.current().kid;
    clock += DAY_MS;
    await c.refresh();
    expect(c.current().kid).not.toBe(cKid);
  });

  it("finishes a rotation that was interrupted before the old key was retired", async () => {
    const keyFile = join(dir, "a.json");
    const old = (await loadOrCreateKeyring(keyFile)).signingKeys[0]!;
    await instance("a");
    // The process crashed right after writing the new key to its file.
    await appendSigningKey(keyFile, await createSigningKey());
    const a = await instance("a");
    expect(a.current().kid).not.toBe(old.kid);
    const doc = (await published()).find((d) => d._id === (old.kid as never));
    expect(doc?.["verifyUntil"]).toEqual(new Date(clock + TTL_MS + LEEWAY_MS));
  });

  it("adopts the new key when another process sharing the key file rotated", async () => {
    const a = await instance("shared");
    const b = await instance("shared");
    const { kid } = await a.rotate();
    expect(b.current().kid).not.toBe(kid);
    await b.refresh();
    expect(b.current().kid).toBe(kid);
  });

  it("shares one rotation between concurrent calls", async () => {
    const a = await instance("a");
    const [x, y] = await Promise.all([a.rotate(), a.rotate()]);
    expect(x.kid).toBe(y.kid);
    expect((await loadOrCreateKeyring(join(dir, "a.json"))).signingKeys).toHaveLength(2);
  });
});
