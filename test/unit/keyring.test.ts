import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KeyringError, loadOrCreateKeyring } from "../../src/keys/keyring.ts";

describe("keyring", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-keys-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("generates keys on first start, owner-only, and reuses them after", async () => {
    const file = join(dir, "nested", "keys.json");
    const first = await loadOrCreateKeyring(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "nested"))).mode & 0o777).toBe(0o700);
    expect(first.encryptionKey).toHaveLength(32);
    expect(first.apiKeyPepper).toHaveLength(32);
    expect(first.encryptionKey.equals(first.apiKeyPepper)).toBe(false);
    expect(first.signingKeys[0]).toMatchObject({ alg: "EdDSA", publicJwk: { kty: "OKP", crv: "Ed25519" } });
    expect(first.signingKeys[0]?.publicJwk).not.toHaveProperty("d");

    const second = await loadOrCreateKeyring(file);
    expect(second.encryptionKey.equals(first.encryptionKey)).toBe(true);
    expect(second.signingKeys[0]?.kid).toBe(first.signingKeys[0]?.kid);
  });

  it("gives every installation its own keys", async () => {
    const a = await loadOrCreateKeyring(join(dir, "a.json"));
    const b = await loadOrCreateKeyring(join(dir, "b.json"));
    expect(a.encryptionKey.equals(b.encryptionKey)).toBe(false);
    expect(a.signingKeys[0]?.kid).not.toBe(b.signingKeys[0]?.kid);
  });

  it("prefers keys the deployment supplies", async () => {
    const encryptionKey = Buffer.alloc(32, 1);
    const apiKeyPepper = Buffer.alloc(32, 2);
    const keyring = await loadOrCreateKeyring(join(dir, "keys.json"), { encryptionKey, apiKeyPepper });
    expect(keyring.encryptionKey.equals(encryptionKey)).toBe(true);
    expect(keyring.apiKeyPepper.equals(apiKeyPepper)).toBe(true);
  });

  it("refuses a key file others can read, without printing key material", async () => {
    const file = join(dir, "keys.json");
    await loadOrCreateKeyring(file);
    const content = JSON.parse(await readFile(file, "utf8")) as { encryptionKey: string };
    await chmod(file, 0o644);
    const error = await loadOrCreateKeyring(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyringError);
    expect((error as Error).message).toContain("chmod 600");
    expect((error as Error).message).not.toContain(content.encryptionKey);
  });

  it("refuses a malformed key file instead of replacing it", async () => {
    const file = join(dir, "keys.json");
    await writeFile(file, JSON.stringify({ version: 1, encryptionKey: "short" }), { mode: 0o600 });
    await expect(loadOrCreateKeyring(file)).rejects.toThrow(/malformed/);
    expect(await readFile(file, "utf8")).toContain("short");
  });
});
