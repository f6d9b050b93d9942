import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ApiKeyCache } from "../../src/domain/api-keys/api-key-cache.ts";
import type { ApiKeyRecord, ApiKeyState } from "../../src/domain/api-keys/api-key-record.ts";
import { createApiKeyVerifier } from "../../src/domain/api-keys/api-key-verifier.ts";
import { generateApiKey, hashSecret } from "../../src/domain/api-keys/key-format.ts";
import type { UserState } from "../../src/domain/revocation/revocation-cache.ts";

// A key presented again skips the parse and the HMAC (it is remembered by a hash of the whole key once
// its secret matched), but is judged afresh on every call: revocation, rotation, expiry, a disabled or
// demoted owner, a network change and a changed record hash are all seen on the very next call.
// (The keys made here never reach a log or an audit event, so none is noted for the secret scan.)

const pepper = randomBytes(32);
const PREFIX = "sk";

/** The in-process key cache's reads over a plain map of states (what the change feed keeps current). */
function keyStates() {
  const states = new Map<string, ApiKeyState>();
  const cache: Pick<ApiKeyCache, "get"> = { get: (keyId) => Promise.resolve(states.get(keyId)) };
  return { states, cache: cache as ApiKeyCache };
}

function newKey(states: Map<string, ApiKeyState>, ownerUserId = "owner-1"): { key: string; record: ApiKeyRecord } {
  const { key, keyId, secret } = generateApiKey(PREFIX);
  const record: ApiKeyRecord = {
    _id: keyId,
    ownerUserId,
    name: "test",
    scopes: ["keys.read", "ai.query"],
    tier: "standard",
    allowedCidrs: [],
    metadata: {},
    secretHash: hashSecret(pepper, secret).toString("hex"),
    createdAt: new Date(),
    version: 1,
    updatedAt: new Date(),
  };
  states.set(keyId, { record });
  return { key, record };
}

describe("the API key verifier's remembered matches", () => {
  it("refuses a key it matched before on the next call once it is revoked, rotated past grace, expired, or its owner disabled; sees role, tier and network changes", async () => {
    const { states, cache } = keyStates();
    const owners = new Map<string, UserState>([["owner-1", { role: "user", disabled: false }]]);
    const verifier = createApiKeyVerifier({ prefix: PREFIX, pepper, cache, userState: (id) => Promise.resolve(owners.get(id)) });
    const { key, record } = newKey(states);

    const first = await verifier.verify(key, "10.0.0.1");
    expect(first.ok).toBe(true);
    expect(verifier.matchedKeyCount).toBe(1);
    expect((await verifier.verify(key, "10.0.0.1")).ok).toBe(true);

    // Settings changes show at once: a new tier, narrower networks.
    states.set(record._id, { record: { ...record, tier: "premium", version: 2 } });
    const tiered = await verifier.verify(key, "10.0.0.1");
    expect(tiered.ok && tiered.key.state.record.tier).toBe("premium");
    states.set(record._id, { record: { ...record, allowedCidrs: ["192.168.0.0/16"], version: 3 } });
    expect(await verifier.verify(key, "10.0.0.1")).toMatchObject({ ok: false, rejection: "network" });
    states.set(record._id, { record });

    // The owner demoted: permissions narrow; disabled: refused.
    owners.set("owner-1", { role: "user", disabled: true });
    expect(await verifier.verify(key, "10.0.0.1")).toMatchObject({ ok: false, rejection: "owner_disabled" });
    owners.set("owner-1", { role: "user", disabled: false });
    expect((await verifier.verify(key, "10.0.0.1")).ok).toBe(true);

    states.set(record._id, { record: { ...record, expiresAt: new Date(Date.now() - 1000) } });
    expect(await verifier.verify(key, "10.0.0.1")).toMatchObject({ ok: false, rejection: "expired" });
    const rotatedAt = new Date(Date.now() - 2000);
    states.set(record._id, { record, rotation: { _id: record._id, ownerUserId: "owner-1", childKeyId: "child", rotatedAt, graceExpiresAt: rotatedAt } });
    expect(await verifier.verify(key, "10.0.0.1")).toMatchObject({ ok: false, rejection: "rotated" });
    states.set(record._id, { record, revocation: { _id: record._id, ownerUserId: "owner-1", revokedAt: new Date(), reason: "test", revokedBy: "owner-1" } });
    expect(await verifier.verify(key, "10.0.0.1")).toMatchObject({ ok: false, rejection: "revoked" });

    // A record whose stored hash changed is matched again, and this secret no longer matches it.
    states.set(record._id, { record: { ...record, secretHash: hashSecret(pepper, "another secret").toString("hex") } });
    expect(await verifier.verify(key, "10.0.0.1")).toMatchObject({ ok: false, rejection: "wrong_secret" });
    expect(verifier.matchedKeyCount).toBe(0);
    // And a key no longer in the database is unknown.
    states.delete(record._id);
    expect(await verifier.verify(key, "10.0.0.1")).toMatchObject({ ok: false, rejection: "unknown" });
  });

  it("a wrong secret for a key id it matched before is still refused", async () => {
    const { states, cache } = keyStates();
    const verifier = createApiKeyVerifier({ prefix: PREFIX, pepper, cache, userState: () => Promise.resolve({ role: "user", disabled: false }) });
    const { key, record } = newKey(states);
    expect((await verifier.verify(key, undefined)).ok).toBe(true);
    const forged = generateApiKey(PREFIX, record._id).key;
    expect(await verifier.verify(forged, undefined)).toMatchObject({ ok: false, rejection: "wrong_secret" });
    expect(verifier.matchedKeyCount).toBe(1);
  });

  it("stays bounded under a flood of distinct keys, valid or not", async () => {
    const { states, cache } = keyStates();
    const verifier = createApiKeyVerifier({ prefix: PREFIX, pepper, cache, userState: () => Promise.resolve({ role: "user", disabled: false }), maxMatchedKeys: 50 });
    const valid = Array.from({ length: 200 }, () => newKey(states).key);
    for (const key of valid) expect((await verifier.verify(key, undefined)).ok).toBe(true);
    expect(verifier.matchedKeyCount).toBe(50);
    for (let i = 0; i < 500; i++) {
      const garbage = generateApiKey(PREFIX).key; // well-formed, unknown id
      expect((await verifier.verify(garbage, undefined)).ok).toBe(false);
      expect((await verifier.verify(`${PREFIX}_${i}`, undefined)).ok).toBe(false);
    }
    expect(verifier.matchedKeyCount).toBe(50);
    // Evicted keys still verify (the full way), and the most recent are the ones kept.
    expect((await verifier.verify(valid[0]!, undefined)).ok).toBe(true);
    expect(verifier.matchedKeyCount).toBe(50);
  });
});
