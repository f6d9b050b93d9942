import { describe, expect, it } from "vitest";
import { apiKeyLength, generateApiKey, hashSecret, parseApiKey, secretMatches } from "../../src/domain/api-keys/key-format.ts";
import { createNetworkMatcher, normaliseCidrs } from "../../src/domain/api-keys/client-networks.ts";

describe("API key format", () => {
  it("round-trips: prefix, id, 256-bit secret and checksum in one token", () => {
    const { key, keyId, secret } = generateApiKey("sk");
    expect(key).toMatch(/^sk_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}$/);
    expect(key).toHaveLength(apiKeyLength("sk"));
    expect(secret).toHaveLength(43);
    expect(parseApiKey("sk", key)).toEqual({ keyId, secret });
    expect(generateApiKey("sk").key).not.toBe(key);
  });

  it("rejects every single-character typo, truncation, extension and foreign prefix by checksum and shape alone", () => {
    const { key } = generateApiKey("sk");
    let accepted = 0;
    for (let i = 0; i < key.length; i++) {
      const replacement = key[i] === "a" ? "b" : "a";
      if (parseApiKey("sk", key.slice(0, i) + replacement + key.slice(i + 1))) accepted++;
    }
    expect(accepted).toBe(0);
    expect(parseApiKey("sk", key.slice(0, -1))).toBeUndefined();
    expect(parseApiKey("sk", `${key}0`)).toBeUndefined();
    expect(parseApiKey("pk", key)).toBeUndefined();
    expect(parseApiKey("sk", `pk${key.slice(2)}`)).toBeUndefined();
    expect(parseApiKey("sk", "")).toBeUndefined();
    expect(parseApiKey("sk", "x".repeat(10_000))).toBeUndefined();
    expect(parseApiKey("sk", key.replace(/.$/, "é"))).toBeUndefined();
  });

  it("stores only an HMAC of the secret, compared in constant time under the pepper", () => {
    const pepper = Buffer.alloc(32, 7);
    const { secret } = generateApiKey("sk");
    const stored = hashSecret(pepper, secret);
    expect(stored.toString("hex")).not.toContain(Buffer.from(secret).toString("hex"));
    expect(secretMatches(pepper, secret, stored)).toBe(true);
    expect(
      secretMatches(
        pepper,
        secret.replace(/^./, (c) => (c === "A" ? "B" : "A")),
        stored,
      ),
    ).toBe(false);
    expect(secretMatches(Buffer.alloc(32, 8), secret, stored)).toBe(false);
  });
});

describe("allowed client networks", () => {
  it("normalises IPv4 and IPv6 CIDRs and bare addresses, refusing anything else with its position", () => {
    expect(normaliseCidrs(["10.0.0.0/8", "2001:DB8::/32", "192.168.1.7"])).toEqual(["10.0.0.0/8", "2001:db8::/32", "192.168.1.7/32"]);
    for (const bad of ["10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "example.com", "10.0.0.0/8/8", "", "10.0.0.0/-1", "1.2.3.4/ 8"]) {
      expect(() => normaliseCidrs(["127.0.0.1", bad])).toThrow(/allowed_cidrs\[1\]/);
    }
  });

  it("matches IPv4 (also IPv4-mapped IPv6) and IPv6 clients against the list; an empty list allows all", () => {
    const match = createNetworkMatcher(normaliseCidrs(["10.0.0.0/8", "2001:db8::/32"]));
    expect(match("10.1.2.3")).toBe(true);
    expect(match("::ffff:10.1.2.3")).toBe(true);
    expect(match("11.0.0.1")).toBe(false);
    expect(match("2001:db8::1")).toBe(true);
    expect(match("2001:db9::1")).toBe(false);
    expect(match("not-an-ip")).toBe(false);
    expect(createNetworkMatcher([])("203.0.113.9")).toBe(true);
  });
});
