import { describe, expect, it } from "vitest";
import type { AuditRecorder } from "../../src/domain/audit/audit-recorder.ts";
import type { CredentialEnvelope } from "../../src/domain/ai/credential-envelope.ts";
import { createCredentialCache } from "../../src/domain/ai/credential-cache.ts";
import type { CredentialRecord, CredentialStore } from "../../src/domain/ai/credential-records.ts";
import { createApiKeyCache, type ApiKeyCacheStore } from "../../src/domain/api-keys/api-key-cache.ts";
import type { ApiKeyState } from "../../src/domain/api-keys/api-key-record.ts";
import { createRevocationCache, type RevocationStore, type UserStateRow } from "../../src/domain/revocation/revocation-cache.ts";
import { createUserProfiles, createUserStateReader } from "../../src/domain/revocation/user-state.ts";
import type { UserRecord } from "../../src/domain/users/user-record.ts";

/**
 * A cache miss reads the database; the change feed may refresh the cache while that read is in flight,
 * applying a change the read did not see (a key revoked, a user demoted, a secret replaced on another
 * instance). The older read must not be kept over it, or the change stays invisible on this instance
 * until the next full reload. Each test holds a miss read open, runs a refresh, then lets the read end.
 */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("a refresh during a cache miss's read", () => {
  it("API keys: the state read before a revocation is used once, not kept", async () => {
    const before = { record: { _id: "k1", version: 1 } } as unknown as ApiKeyState;
    const after = { ...before, revocation: { _id: "k1", revokedAt: new Date() } } as unknown as ApiKeyState;
    let current = before;
    const reads: Array<ReturnType<typeof deferred<ApiKeyState | undefined>>> = [];
    const store: ApiKeyCacheStore = {
      findState: () => {
        const read = deferred<ApiKeyState | undefined>();
        reads.push(read);
        return read.promise;
      },
      // The revocation happened after the miss read looked: the refresh sees it.
      changesSince: async () => ({ records: [], revocations: after.revocation ? [after.revocation] : [], rotations: [] }),
    };
    const cache = createApiKeyCache({ store });
    const first = cache.get("k1");
    await cache.follower.refresh();
    current = after;
    reads[0]!.resolve(before);
    expect(await first).toBe(before);
    const second = cache.get("k1");
    expect(reads).toHaveLength(2); // read again, not served from a stale entry
    reads[1]!.resolve(current);
    expect((await second)?.revocation).toBeDefined();
    expect(cache.peek("k1")?.revocation).toBeDefined();
  });

  it("provider credentials: the secret read before a replacement is used once, not kept", async () => {
    const records = new Map<string, CredentialRecord>();
    const reads: Array<ReturnType<typeof deferred<CredentialRecord | undefined>>> = [];
    const store = {
      find: () => {
        const read = deferred<CredentialRecord | undefined>();
        reads.push(read);
        return read.promise;
      },
      versions: async () => [...records.values()].map((r) => ({ _id: r._id, updatedAt: r.updatedAt })),
      claimFirstUse: async () => false,
    } as unknown as CredentialStore;
    const envelope = { open: (record: CredentialRecord) => (record as unknown as { secret: string }).secret } as unknown as CredentialEnvelope;
    const cache = createCredentialCache({ store, envelope, audit: { record: () => undefined } as unknown as AuditRecorder });
    // Nothing stored yet: the miss read finds nothing, but a secret is put on another instance meanwhile.
    const first = cache.secretFor("openai", "default");
    const stored = { _id: "cred", updatedAt: new Date(), secret: "sk-new" } as unknown as CredentialRecord;
    records.set("cred", stored);
    await cache.follower.refresh();
    reads[0]!.resolve(undefined);
    expect(await first).toBeUndefined();
    const second = cache.secretFor("openai", "default");
    expect(reads).toHaveLength(2);
    reads[1]!.resolve(stored);
    expect(await second).toBe("sk-new");
  });

  it("users: a role read before a demotion does not undo the demotion the refresh applied", async () => {
    const row = (role: string, disabled: boolean): UserStateRow => ({ userId: "u1", role, disabled, username: "una", createdAt: new Date(0), updatedAt: new Date() });
    let rows: UserStateRow[] = [];
    const store: RevocationStore = { revokedSessionsSince: async () => [], userStates: async () => rows, mfaStates: async () => [] };
    const cache = createRevocationCache({ store, retentionMs: 60_000 });
    await cache.start(); // u1 does not exist yet here
    const record = { _id: "u1", username: "una", role: "admin", disabled: false, createdAt: new Date(0), updatedAt: new Date() } as unknown as UserRecord;
    const userRead = deferred<UserRecord | undefined>();
    const profileRead = deferred<UserRecord | undefined>();
    const state = createUserStateReader({ revocations: cache, users: { findById: () => userRead.promise } })("u1");
    const profiles = createUserProfiles({ revocations: cache, users: { findById: () => profileRead.promise }, mfaEnabled: async () => false });
    const profile = profiles.get("u1");
    rows = [row("user", true)]; // demoted and disabled on another instance
    await cache.follower.refresh();
    userRead.resolve(record);
    profileRead.resolve(record);
    expect(await state).toEqual({ role: "user", disabled: true });
    expect(await profile).toMatchObject({ role: "user", disabled: true });
    expect(cache.userState("u1")).toEqual({ role: "user", disabled: true });
  });
});
