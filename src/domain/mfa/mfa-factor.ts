/** One backup code: its HMAC (never the code) and, once spent, when. */
export interface BackupCodeRecord {
  readonly hash: string;
  readonly usedAt?: Date;
}

/**
 * A user's TOTP factor (one per user). Secrets are sealed with the secret box under the context
 * `totp:<userId>`; backup codes are HMACs. Absent optional fields are absent, never null.
 *
 * - `enabled`: whether login asks for a second factor; `secretSealed` is set exactly when it is true.
 * - `enrollmentId`: random, new with every `beginEnrollment` and kept once confirmed. Uses of codes are
 *   recorded per enrolment, so a new enrolment never inherits (or trips over) an old one's.
 * - `pendingSecretSealed`, `pendingCreatedAt`: an enrolment begun and not yet confirmed; it changes
 *   nothing for login.
 * - `lastUsedStep`: the newest TOTP time step used in this enrolment (the confirming code's at first);
 *   only newer steps are accepted after it.
 * - `backupCodes[].usedAt`: when that code was spent.
 */
export interface MfaFactorRecord {
  readonly userId: string;
  readonly enabled: boolean;
  readonly enrollmentId?: string;
  readonly secretSealed?: string;
  readonly pendingSecretSealed?: string;
  readonly pendingCreatedAt?: Date;
  readonly lastUsedStep?: number;
  readonly backupCodes: readonly BackupCodeRecord[];
  readonly enabledAt?: Date;
  readonly updatedAt: Date;
}

/** A one-time use of a TOTP time step or of a backup code (by its hash). */
export type MfaCodeUse = { readonly kind: "totp"; readonly step: number } | { readonly kind: "backup_code"; readonly hash: string };

/**
 * Where MFA factors live; implemented by `src/store/mfa-store.ts`.
 *
 * Spending a code goes through {@link MfaStore.recordUse} alone: it must be exclusive (of two racing
 * calls for the same use, exactly one gets true) on every supported database, whichever server instance
 * the calls reach. The other changes are conditional updates of the factor, made only by the user's own
 * account management; they need not win races against each other.
 */
export interface MfaStore {
  /** The factor, with `lastUsedStep` and `backupCodes[].usedAt` filled in from the recorded uses. */
  find(userId: string): Promise<MfaFactorRecord | undefined>;
  /** Records a new pending enrolment (replacing any earlier one) unless MFA is enabled; false if it is. */
  savePending(userId: string, pending: { enrollmentId: string; secretSealed: string; at: Date }): Promise<boolean>;
  /**
   * Turns the pending enrolment into the enabled factor (`secretSealed` being the pending secret) with
   * fresh backup codes — only if MFA is off and that enrolment is still the pending one.
   */
  enable(userId: string, factor: { enrollmentId: string; secretSealed: string; backupCodeHashes: readonly string[]; at: Date }): Promise<boolean>;
  /** Replaces all backup codes — only if MFA is enabled under `enrollmentId`. */
  replaceBackupCodes(userId: string, enrollmentId: string, backupCodeHashes: readonly string[], at: Date): Promise<boolean>;
  /** Turns MFA off and forgets the secret, any pending enrolment, the backup codes and their uses. No-op if absent. */
  disable(userId: string, at: Date): Promise<void>;
  /** Records that `use` happened in enrolment `enrollmentId`; false — atomically — if it was recorded before. */
  recordUse(userId: string, enrollmentId: string, use: MfaCodeUse, at: Date): Promise<boolean>;
  /** Forgets the enrolment's recorded TOTP steps older than `step` (they can no longer match a code). */
  forgetTotpStepsBefore(enrollmentId: string, step: number): Promise<void>;
}
