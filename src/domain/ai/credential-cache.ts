import type { ChangeFollower } from "../changes/change-feed.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { CredentialEnvelope } from "./credential-envelope.ts";
import { credentialId, type CredentialStore } from "./credential-records.ts";
import { auditedCaller } from "../audit/audit-caller.ts";

/**
 * Provider secrets as adapters read them at call time: decrypted once, then held in memory for a short
 * while, so a query costs no database read and no decryption. A change on this instance drops the entry
 * at once; a change on another instance moves the change feed's mark, upon which the credentials'
 * versions (ids and update times, no secret material) are read while anything is cached: within a second.
 */
export interface CredentialCache {
  /** The secret of `name` for `provider`, or undefined when none is stored. */
  secretFor(provider: string, name: string, ctx?: RequestContext): Promise<string | undefined>;
  invalidate(provider: string, name: string): void;
  /** The cache as a follower of the change feed. */
  readonly follower: ChangeFollower;
}

interface Entry {
  readonly secret: string | undefined;
  readonly updatedAtMs: number | undefined;
  readonly loadedAt: number;
}

// Held no longer than this even without a change, so a missed poll cannot keep a secret forever.
const MAX_AGE_MS = 5 * 60_000;

export function createCredentialCache(deps: { store: CredentialStore; envelope: CredentialEnvelope; audit: AuditRecorder }): CredentialCache {
  const entries = new Map<string, Entry>();
  const loading = new Map<string, Promise<Entry>>();
  let generation = 0;

  const load = async (provider: string, name: string, ctx: RequestContext | undefined): Promise<Entry> => {
    const id = credentialId(provider, name);
    const record = await deps.store.find(id);
    if (!record) return { secret: undefined, updatedAtMs: undefined, loadedAt: Date.now() };
    let secret: string;
    try {
      secret = deps.envelope.open(record, { id, provider });
    } catch {
      // Tampered, or sealed under another master key: the provider cannot be used, and no detail helps a caller.
      throw new DomainError("unavailable", `the stored credential "${name}" of provider ${provider} cannot be decrypted with this server's key`);
    }
    // The first use of each version of a secret is audited once, whichever instance gets there first.
    if (await deps.store.claimFirstUse(id, record.updatedAt)) {
      deps.audit.record({
        type: "credential.first_use",
        outcome: "success",
        ...(ctx ? auditedCaller(ctx) : { actor: { kind: "system", display: "provider-probe" } }),
        target: { kind: "provider_credential", id },
        metadata: { provider, name, key_version: record.keyVersion, updated_at: record.updatedAt.toISOString() },
      });
    }
    return { secret, updatedAtMs: record.updatedAt.getTime(), loadedAt: Date.now() };
  };

  const poll = async () => {
    // A load in flight may have read the credential before the change this refresh is about: its
    // callers use it once, the cache does not keep it.
    generation++;
    if (entries.size === 0) return;
    const versions = new Map((await deps.store.versions()).map((v) => [v._id, v.updatedAt.getTime()]));
    for (const [key, entry] of entries) {
      const [provider, name] = JSON.parse(key) as [string, string];
      const current = versions.get(credentialId(provider, name));
      if (current !== entry.updatedAtMs || Date.now() - entry.loadedAt > MAX_AGE_MS) {
        entries.delete(key);
        generation++;
      }
    }
  };

  return {
    async secretFor(provider, name, ctx) {
      const key = JSON.stringify([provider, name]);
      const cached = entries.get(key);
      if (cached) return cached.secret;
      let pending = loading.get(key);
      if (!pending) {
        const startedAt = generation;
        pending = load(provider, name, ctx).then((entry) => {
          // A change noticed while loading may concern what was just read: use it once, keep it not.
          if (generation === startedAt) entries.set(key, entry);
          return entry;
        });
        pending.finally(() => loading.delete(key)).catch(() => undefined);
        loading.set(key, pending);
      }
      return (await pending).secret;
    },
    invalidate(provider, name) {
      entries.delete(JSON.stringify([provider, name]));
      generation++;
    },
    // Every minute even without a change, so an entry past its maximum age goes.
    follower: { name: "provider credential cache", topics: ["provider_credentials"], refresh: poll, everyMs: 60_000 },
  };
}
