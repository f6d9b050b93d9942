import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createSecretBox } from "../../src/domain/crypto/secret-box.ts";

const key = randomBytes(32);
const box = createSecretBox(key);
const context = "totp:user-1";

/** `sealed` with one bit flipped in part `index` (1 = IV, 2 = ciphertext, 3 = tag), re-encoded canonically. */
function flipBit(sealed: string, index: number): string {
  const parts = sealed.split(".");
  const bytes = Buffer.from(parts[index]!, "base64url");
  bytes[0] = bytes[0]! ^ 0x01;
  parts[index] = bytes.toString("base64url");
  return parts.join(".");
}

describe("createSecretBox", () => {
  it("opens what it sealed, in a self-describing v1 format that does not contain the plaintext", () => {
    const plaintext = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP ✓";
    const sealed = box.seal(plaintext, context);
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(sealed).not.toContain("JBSWY3DP");
    expect(box.open(sealed, context)).toBe(plaintext);
    expect(box.open(box.seal("", context), context)).toBe("");
  });

  it("seals the same plaintext differently each time", () => {
    const first = box.seal("same secret", context);
    const second = box.seal("same secret", context);
    expect(first).not.toBe(second);
    expect(first.split(".")[1]).not.toBe(second.split(".")[1]);
    expect(box.open(second, context)).toBe("same secret");
  });

  it.each([
    ["IV", 1],
    ["ciphertext", 2],
    ["tag", 3],
  ])("refuses a tampered %s", (_name, index) => {
    const sealed = box.seal("a secret", context);
    expect(() => box.open(flipBit(sealed, index), context)).toThrow(/cannot open/);
  });

  it("refuses malformed or non-canonical values, a truncated tag and an unknown version", () => {
    const sealed = box.seal("a secret", context);
    const [, iv, ciphertext, tag] = sealed.split(".");
    for (const bad of [
      "",
      "v1",
      `v2.${iv}.${ciphertext}.${tag}`,
      `v1.${iv}.${ciphertext}`,
      `v1.${iv}.${ciphertext}.${tag!.slice(0, 16)}`,
      `v1.${iv}.${ciphertext}.${tag}.extra`,
      `v1.${iv}!.${ciphertext}.${tag}`,
    ]) {
      expect(() => box.open(bad, context), bad).toThrow(Error);
    }
    // Changing only the unused trailing bits of the tag's last character decodes to the same bytes: refused.
    const last = tag!.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(() => box.open(`v1.${iv}.${ciphertext}.${tag!.slice(0, -1)}${sibling}`, context)).toThrow(Error);
  });

  it("refuses another key", () => {
    const sealed = box.seal("a secret", context);
    expect(() => createSecretBox(randomBytes(32)).open(sealed, context)).toThrow(/cannot open/);
  });

  it("refuses another context: a ciphertext moved to another record is useless", () => {
    const sealed = box.seal("a secret", context);
    expect(() => box.open(sealed, "totp:user-2")).toThrow(/cannot open/);
    expect(() => box.open(sealed, "")).toThrow(/cannot open/);
  });

  it("keeps the secret out of its error messages and copies the key", () => {
    const mutable = Buffer.from(key);
    const own = createSecretBox(mutable);
    const sealed = own.seal("hunter2", context);
    mutable.fill(0);
    expect(own.open(sealed, context)).toBe("hunter2");
    const error = (() => {
      try {
        own.open(flipBit(sealed, 2), context);
      } catch (err) {
        return err as Error;
      }
    })();
    expect(error?.message).not.toContain("hunter2");
    expect(error?.message).not.toContain(sealed);
  });

  it("requires a 32-byte key", () => {
    expect(() => createSecretBox(randomBytes(16))).toThrow("32 bytes");
  });
});
