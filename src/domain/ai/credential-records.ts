import { createHash } from "node:crypto";
import type { SealedSecret } from "./credential-envelope.ts";

/**
 * A stored provider credential (collection `provider_credentials`). The id is derived from the provider
 * and name, so "one credential per provider and name" is the unique `_id`: two concurrent creations
 * cannot both insert, and the loser replaces instead.
 */
export interface CredentialRecord extends SealedSecret {
  readonly _id: string;
  readonly provider: string;
  readonly name: string;
  /** The last 4 characters of the secret (empty for secrets under 8 characters). */
  readonly hint: string;
  readonly createdAt: Date;
  /** Moves with every replacement; with the id it names one version of the secret. */
  readonly updatedAt: Date;
}

/** What every instance's credential cache compares to notice a change (no secret material). */
export interface CredentialVersion {
  readonly _id: string;
  readonly updatedAt: Date;
}

/** The credential store; implemented by `src/store/provider-credentials-store.ts`. */
export interface CredentialStore {
  /** False when a credential with this id exists already. */
  insert(record: CredentialRecord): Promise<boolean>;
  /** Replaces the secret of an existing credential (false if it is gone). */
  replace(record: CredentialRecord): Promise<boolean>;
  find(id: string): Promise<CredentialRecord | undefined>;
  /** Ordered by provider, then name, after `after`. */
  list(options: { provider?: string; after?: { provider: string; name: string }; limit: number }): Promise<CredentialRecord[]>;
  all(): Promise<CredentialRecord[]>;
  versions(): Promise<CredentialVersion[]>;
  delete(id: string): Promise<boolean>;
  /** Swaps the wrapped data key if the record still holds `expectedWrappedKey`; false otherwise. */
  rewrap(id: string, expectedWrappedKey: string, next: { keyVersion: number; wrappedKey: string }): Promise<boolean>;
  /** Takes the rotation lock (insert-only, exactly one holder); an abandoned lock older than `staleMs` is taken over. */
  claimRotation(holder: string, now: Date, staleMs: number): Promise<boolean>;
  releaseRotation(holder: string): Promise<void>;
  /** True for exactly one caller per credential version, on any instance. */
  claimFirstUse(id: string, updatedAt: Date): Promise<boolean>;
}

/** The id of the credential `name` of `provider`: stable, and revealing nothing but what it names. */
export function credentialId(provider: string, name: string): string {
  return `cred_${createHash("sha256").update(`${provider}\n${name}`).digest("base64url").slice(0, 22)}`;
}

export const CREDENTIAL_ID = /^cred_[A-Za-z0-9_-]{22}$/;
