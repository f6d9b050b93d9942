import { randomUUID } from "node:crypto";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { CredentialCache } from "./credential-cache.ts";
import type { CredentialEnvelope } from "./credential-envelope.ts";
import { CREDENTIAL_ID, credentialId, type CredentialRecord, type CredentialStore } from "./credential-records.ts";
import { auditedCaller } from "../audit/audit-caller.ts";

/** A credential as callers see it: never the secret or any of its ciphertext. */
export interface CredentialView {
  readonly id: string;
  readonly provider: string;
  readonly name: string;
  readonly hint: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly keyVersion: number;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const MAX_SECRET_LENGTH = 8_192;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
// A rotation that has not finished in this long was abandoned (its instance died): another may take over.
const ROTATION_STALE_MS = 5 * 60_000;

/** The provider credentials of the gateway, as the AI handlers manage them. */
export interface CredentialVault {
  /** PutProviderCredential: stores (or replaces) a secret, wrapped under the configured key version. */
  put(ctx: RequestContext, input: { provider: string; name: string; secret: string }): Promise<{ credential: CredentialView; replaced: boolean }>;
  /** ListProviderCredentials: a page of credentials, never their secrets. */
  list(ctx: RequestContext, input: { provider: string; pageSize: number; pageToken: string }): Promise<{ credentials: CredentialView[]; nextPageToken: string }>;
  /** DeleteProviderCredential. */
  delete(ctx: RequestContext, id: string): Promise<void>;
  /**
   * Re-wraps every data key below the configured version under it. Nothing changes unless every
   * credential opens first; each record is swapped in one write (its wrapped key and version
   * together), so every instance can read every credential at every moment of the rotation.
   */
  rotate(ctx: RequestContext): Promise<{ reencrypted: number; keyVersion: number }>;
}

/**
 * PutProviderCredential, ListProviderCredentials, DeleteProviderCredential and RotateCredentialEncryption.
 * Secrets go in and never come out of here; every change is audited (metadata only) and invalidates the
 * credential cache of this instance at once and of the others within a second.
 */
export function createCredentialVault(deps: {
  store: CredentialStore;
  envelope: CredentialEnvelope;
  cache: CredentialCache;
  audit: AuditRecorder;
  /** The configured providers that take a credential; others are NOT_FOUND (or, for local ones, refused). */
  providerKind: (provider: string) => "openai" | "anthropic" | "local" | undefined;
  /** The key-encryption-key version new secrets and rotations use. */
  keyVersion: number;
  now?: () => Date;
}): CredentialVault {
  const now = deps.now ?? (() => new Date());
  const view = (r: CredentialRecord): CredentialView => ({ id: r._id, provider: r.provider, name: r.name, hint: r.hint, createdAt: r.createdAt, updatedAt: r.updatedAt, keyVersion: r.keyVersion });
  const audit = (ctx: RequestContext, type: string, target: string | undefined, metadata: Record<string, string | number | boolean>, outcome: "success" | "failure" = "success", reason?: string) =>
    deps.audit.recordNow({
      type,
      outcome,
      ...auditedCaller(ctx),
      ...(target ? { target: { kind: "provider_credential", id: target } } : {}),
      ...(reason ? { reason } : {}),
      metadata,
    });

  return {
    async put(ctx: RequestContext, input: { provider: string; name: string; secret: string }): Promise<{ credential: CredentialView; replaced: boolean }> {
      const provider = input.provider.trim();
      const name = input.name.trim();
      const secret = input.secret.trim();
      if (provider === "") throw new DomainError("invalid_argument", "provider is required");
      if (name === "") throw new DomainError("invalid_argument", "name is required");
      if (secret === "") throw new DomainError("invalid_argument", "secret is required");
      if (!NAME.test(name)) throw new DomainError("invalid_argument", "name must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)");
      if (secret.length > MAX_SECRET_LENGTH || /[\p{Cc}\s]/u.test(secret))
        throw new DomainError("invalid_argument", `secret must be at most ${MAX_SECRET_LENGTH} characters without spaces or control characters`);
      const kind = deps.providerKind(provider);
      if (kind === undefined) throw new DomainError("not_found", `unknown provider ${JSON.stringify(provider.slice(0, 64))}`);
      if (kind === "local") throw new DomainError("invalid_argument", `provider ${provider} is the built-in local responder and takes no credential`);
      const id = credentialId(provider, name);
      const at = now();
      const sealed = deps.envelope.seal(secret, { id, provider }, deps.keyVersion);
      const hint = secret.length >= 8 ? secret.slice(-4) : "";
      const fresh: CredentialRecord = { _id: id, provider, name, hint, createdAt: at, updatedAt: at, ...sealed };
      let record = fresh;
      let replaced = false;
      if (!(await deps.store.insert(fresh))) {
        const existing = await deps.store.find(id);
        record = { ...fresh, createdAt: existing?.createdAt ?? at };
        replaced = existing !== undefined && (await deps.store.replace(record));
        if (!replaced && !(await deps.store.insert(record))) throw new DomainError("aborted", "the credential changed concurrently; try again");
      }
      deps.cache.invalidate(provider, name);
      await audit(ctx, "credential.put", id, { provider, name, replaced, key_version: record.keyVersion });
      return { credential: view(record), replaced };
    },

    async list(_ctx: RequestContext, input: { provider: string; pageSize: number; pageToken: string }): Promise<{ credentials: CredentialView[]; nextPageToken: string }> {
      if (!Number.isInteger(input.pageSize) || input.pageSize < 0) throw new DomainError("invalid_argument", "page_size must not be negative");
      const limit = input.pageSize === 0 ? DEFAULT_PAGE : Math.min(input.pageSize, MAX_PAGE);
      const provider = input.provider.trim();
      const after = decodePageToken(input.pageToken, provider);
      const records = await deps.store.list({ ...(provider ? { provider } : {}), ...(after ? { after } : {}), limit: limit + 1 });
      const page = records.slice(0, limit);
      const last = page.at(-1);
      return { credentials: page.map(view), nextPageToken: records.length > limit && last ? encodePageToken(provider, last) : "" };
    },

    async delete(ctx: RequestContext, id: string): Promise<void> {
      const record = CREDENTIAL_ID.test(id) ? await deps.store.find(id) : undefined;
      if (!record || !(await deps.store.delete(id))) throw new DomainError("not_found", "credential not found");
      deps.cache.invalidate(record.provider, record.name);
      await audit(ctx, "credential.delete", id, { provider: record.provider, name: record.name });
    },

    /**
     * Re-wraps every data key below the configured version under it. Nothing changes unless every
     * credential opens first; each record is swapped in one write (its wrapped key and version
     * together), so every instance can read every credential at every moment of the rotation.
     */
    async rotate(ctx: RequestContext): Promise<{ reencrypted: number; keyVersion: number }> {
      const target = deps.keyVersion;
      const holder = randomUUID();
      if (!(await deps.store.claimRotation(holder, now(), ROTATION_STALE_MS))) throw new DomainError("aborted", "another credential rotation is in progress");
      try {
        const all = await deps.store.all();
        const newer = all.find((r) => r.keyVersion > target);
        if (newer) throw new DomainError("failed_precondition", `credentials are already under key version ${newer.keyVersion}, above this server's PORTCULLIS_CREDENTIAL_KEY_VERSION ${target}`);
        const due = all.filter((r) => r.keyVersion < target);
        if (all.length > 0 && due.length === 0) {
          throw new DomainError("failed_precondition", `no new key is configured: every credential is under key version ${target}; raise PORTCULLIS_CREDENTIAL_KEY_VERSION first`);
        }
        const rewrapped: Array<{ record: CredentialRecord; keyVersion: number; wrappedKey: string }> = [];
        for (const record of due) {
          try {
            rewrapped.push({ record, ...deps.envelope.rewrap(record, { id: record._id, provider: record.provider }, target) });
          } catch {
            await audit(ctx, "credential.rotate", record._id, { key_version: target, changed: 0 }, "failure", "a credential cannot be decrypted");
            throw new DomainError("failed_precondition", `credential ${record._id} cannot be decrypted with this server's key; nothing was changed`);
          }
        }
        let count = 0;
        // A record replaced or deleted meanwhile is already under the new version (or gone): skip it.
        for (const { record, keyVersion, wrappedKey } of rewrapped) if (await deps.store.rewrap(record._id, record.wrappedKey, { keyVersion, wrappedKey })) count++;
        await audit(ctx, "credential.rotate", undefined, { key_version: target, reencrypted: count });
        return { reencrypted: count, keyVersion: target };
      } finally {
        await deps.store.releaseRotation(holder);
      }
    },
  };
}

/** After a credential changes, the providers' health is probed again at once rather than at the next interval. */
export function reprobingVault(vault: CredentialVault, registry: { probeAll(): Promise<unknown> }): CredentialVault {
  return {
    ...vault,
    async put(ctx, input) {
      const result = await vault.put(ctx, input);
      void registry.probeAll();
      return result;
    },
    async delete(ctx, id) {
      await vault.delete(ctx, id);
      void registry.probeAll();
    },
  };
}

function encodePageToken(provider: string, last: CredentialRecord): string {
  return Buffer.from(JSON.stringify({ f: provider, p: last.provider, n: last.name }), "utf8").toString("base64url");
}

/** The position after which the next page starts; a token made for another provider filter is refused. */
function decodePageToken(token: string, provider: string): { provider: string; name: string } | undefined {
  if (token === "") return undefined;
  let parsed: unknown;
  try {
    parsed = /^[A-Za-z0-9_-]{1,400}$/.test(token) ? JSON.parse(Buffer.from(token, "base64url").toString("utf8")) : undefined;
  } catch {
    parsed = undefined;
  }
  const t = parsed as { f?: unknown; p?: unknown; n?: unknown } | undefined;
  if (!t || typeof t.p !== "string" || typeof t.n !== "string" || typeof t.f !== "string") throw new DomainError("invalid_argument", "page token is malformed");
  if (t.f !== provider) throw new DomainError("invalid_argument", "page token was made for another provider filter");
  return { provider: t.p, name: t.n };
}
