import { randomUUID } from "node:crypto";
import { toBuffer as qrPngOf } from "qrcode";
import type { SecretBox } from "../crypto/secret-box.ts";
import { DomainError } from "../errors.ts";
import { findBackupCodeHash, generateBackupCodes, hashBackupCode } from "./backup-codes.ts";
import type { MfaFactorRecord, MfaStore } from "./mfa-factor.ts";
import { generateTotpSecret, matchTotpStep, totpUri } from "./totp.ts";

export type { MfaCodeUse, MfaFactorRecord, MfaStore } from "./mfa-factor.ts";

/** How a second factor was proven. */
export type MfaMethod = "totp" | "backup_code";

/**
 * TOTP multi-factor authentication with single-use backup codes. Whether a caller may do any of this
 * (their own account, a recent MFA check before `disable`) is for the caller to decide; this module keeps
 * the factor right. The plaintext TOTP secret and backup codes are never stored, logged or put in an
 * error message: they leave only in the return values meant for the user.
 */
export interface MfaService {
  /**
   * Starts (or restarts) enrolment: a new pending secret, returned as text, as an `otpauth://` URI and as
   * that URI's QR code (PNG). Nothing changes for login until {@link MfaService.confirmEnrollment}.
   * `accountName` labels the entry in the authenticator app (1–256 characters, no control characters,
   * else invalid_argument). Refuses with failed_precondition when MFA is already enabled.
   */
  beginEnrollment(userId: string, accountName: string): Promise<{ secret: string; otpauthUri: string; qrPng: Uint8Array }>;
  /**
   * A valid code for the pending secret enables MFA and returns 10 backup codes, in plain text, to show
   * once. The code's step counts as used. A wrong code is invalid_argument "invalid code" (the enrolment
   * stays pending); no pending enrolment, one older than 15 minutes, or one replaced meanwhile by a newer
   * `beginEnrollment` is failed_precondition.
   */
  confirmEnrollment(userId: string, code: string): Promise<{ backupCodes: string[] }>;
  isEnabled(userId: string): Promise<boolean>;
  /**
   * Checks a TOTP code or a backup code and consumes it: a TOTP step is accepted only if it is newer than
   * the last accepted step, and only once — its use is recorded atomically (replay protection, also across
   * server instances racing each other); a backup code's use is recorded the same way (a second use fails). Six digits are read
   * as a TOTP code, anything else as a backup code (spaces, dashes and case ignored). Returns "totp" |
   * "backup_code" | undefined (wrong, replayed, or MFA not enabled). Never throws for a bad code; input
   * longer than 32 characters is refused before any work. Attempt limits belong to the caller.
   */
  verifyAndConsume(userId: string, code: string): Promise<MfaMethod | undefined>;
  /** Turns MFA off and forgets the secret and backup codes (and any pending enrolment). Idempotent. */
  disable(userId: string): Promise<void>;
  /** Ten new backup codes (plain, shown once); all earlier ones stop working. failed_precondition unless MFA is enabled. */
  regenerateBackupCodes(userId: string): Promise<{ backupCodes: string[] }>;
  /** How many backup codes are left unused; 0 when MFA is not enabled. */
  remainingBackupCodes(userId: string): Promise<number>;
}

/** A factor with MFA enabled: the fields that then are always there, typed so. */
type EnabledFactor = MfaFactorRecord & { readonly secretSealed: string; readonly enrollmentId: string };

/** How long a begun enrolment can be confirmed: long enough to find the phone, short enough to go stale. */
export const PENDING_ENROLLMENT_TTL_MS = 15 * 60_000;
const MAX_CODE_LENGTH = 32;
// Recorded TOTP steps older than this many steps behind the newest can go: no code can match them, even
// on a server whose clock is minutes behind.
const KEPT_TOTP_STEPS = 10;
const MAX_ACCOUNT_NAME_LENGTH = 256;
const TOTP_CODE = /^[0-9]{6}$/;

/**
 * The MFA service over `store`. `secretBox` seals TOTP secrets under the context `totp:<userId>`;
 * `backupCodeKey` keys the backup-code HMACs (`deriveBackupCodeKey(keyring.encryptionKey)`); `now`
 * (milliseconds) is for tests.
 */
export function createMfaService(deps: { store: MfaStore; secretBox: SecretBox; backupCodeKey: Buffer; now?: () => number }): MfaService {
  const { store, secretBox, backupCodeKey } = deps;
  const now = deps.now ?? Date.now;
  const context = (userId: string) => `totp:${userId}`;

  /** New display codes and their hashes, in the same order. */
  function newBackupCodes(): { codes: string[]; hashes: string[] } {
    const codes = generateBackupCodes();
    return { codes, hashes: codes.map((code) => hashBackupCode(backupCodeKey, code)!) };
  }

  async function verifyTotp(factor: EnabledFactor, code: string, at: number): Promise<boolean> {
    const step = matchTotpStep(secretBox.open(factor.secretSealed, context(factor.userId)), code, at);
    // Older than the newest used step: refused without a write. Only recordUse is atomic, though: it is
    // what stops two requests racing with the same code.
    if (step === undefined || step <= (factor.lastUsedStep ?? -1)) return false;
    if (!(await store.recordUse(factor.userId, factor.enrollmentId, { kind: "totp", step }, new Date(at)))) return false;
    // Housekeeping must not fail a login whose code is already spent; the next login tries again.
    await store.forgetTotpStepsBefore(factor.enrollmentId, step - KEPT_TOTP_STEPS).catch(() => undefined);
    return true;
  }

  async function verifyBackupCode(factor: EnabledFactor, code: string, at: number): Promise<boolean> {
    const hash = hashBackupCode(backupCodeKey, code);
    if (hash === undefined) return false;
    // Spent codes take part as empty strings, so every lookup compares against all ten slots.
    const index = findBackupCodeHash(
      factor.backupCodes.map((c) => (c.usedAt ? "" : c.hash)),
      hash,
    );
    return index >= 0 && store.recordUse(factor.userId, factor.enrollmentId, { kind: "backup_code", hash }, new Date(at));
  }

  /** The factor if MFA is enabled (with everything an enabled factor has), else undefined. */
  async function findEnabled(userId: string): Promise<EnabledFactor | undefined> {
    const factor = await store.find(userId);
    const { secretSealed, enrollmentId } = factor ?? {};
    return factor?.enabled && secretSealed !== undefined && enrollmentId !== undefined ? { ...factor, secretSealed, enrollmentId } : undefined;
  }

  return {
    async beginEnrollment(userId, accountName) {
      if (typeof accountName !== "string" || accountName.length === 0 || accountName.length > MAX_ACCOUNT_NAME_LENGTH || /\p{Cc}/u.test(accountName)) {
        throw new DomainError("invalid_argument", `account name must be 1 to ${MAX_ACCOUNT_NAME_LENGTH} characters without control characters`);
      }
      const secret = generateTotpSecret();
      const pending = { enrollmentId: randomUUID(), secretSealed: secretBox.seal(secret, context(userId)), at: new Date(now()) };
      if (!(await store.savePending(userId, pending))) {
        throw new DomainError("failed_precondition", "MFA is already enabled");
      }
      const otpauthUri = totpUri({ secret, accountName });
      const qrPng = await qrPngOf(otpauthUri, { type: "png", errorCorrectionLevel: "M", margin: 2, width: 256 });
      return { secret, otpauthUri, qrPng: new Uint8Array(qrPng) };
    },

    async confirmEnrollment(userId, code) {
      const at = now();
      const factor = await store.find(userId);
      const { pendingSecretSealed: pending, enrollmentId, pendingCreatedAt } = factor ?? {};
      if (!factor || factor.enabled || !pending || !enrollmentId || !pendingCreatedAt || at - pendingCreatedAt.getTime() > PENDING_ENROLLMENT_TTL_MS) {
        throw new DomainError("failed_precondition", "no pending MFA enrolment; begin enrolment again");
      }
      const step = typeof code === "string" && TOTP_CODE.test(code) ? matchTotpStep(secretBox.open(pending, context(userId)), code, at) : undefined;
      if (step === undefined) throw new DomainError("invalid_argument", "invalid code");
      // The confirming code is spent like any other: it cannot then log in, and of two confirmations
      // racing with it only one goes on to enable (and hand out backup codes).
      if (!(await store.recordUse(userId, enrollmentId, { kind: "totp", step }, new Date(at)))) {
        throw new DomainError("invalid_argument", "invalid code");
      }

      const { codes, hashes } = newBackupCodes();
      if (!(await store.enable(userId, { enrollmentId, secretSealed: pending, backupCodeHashes: hashes, at: new Date(at) }))) {
        // A concurrent beginEnrollment replaced the secret this code belongs to, or a concurrent confirm won.
        throw new DomainError("failed_precondition", "no pending MFA enrolment; begin enrolment again");
      }
      return { backupCodes: codes };
    },

    async isEnabled(userId) {
      return (await store.find(userId))?.enabled === true;
    },

    async verifyAndConsume(userId, code) {
      // 1. Bound the input before any work: it comes straight from a login request.
      if (typeof code !== "string" || code.length === 0 || code.length > MAX_CODE_LENGTH) return undefined;
      // 2. Only an enabled factor can be satisfied.
      const factor = await findEnabled(userId);
      if (!factor) return undefined;
      const at = now();
      // 3. Six digits are a TOTP code; anything else can only be a backup code.
      if (TOTP_CODE.test(code)) return (await verifyTotp(factor, code, at)) ? "totp" : undefined;
      return (await verifyBackupCode(factor, code, at)) ? "backup_code" : undefined;
    },

    async disable(userId) {
      await store.disable(userId, new Date(now()));
    },

    async regenerateBackupCodes(userId) {
      const factor = await findEnabled(userId);
      const { codes, hashes } = newBackupCodes();
      if (!factor || !(await store.replaceBackupCodes(userId, factor.enrollmentId, hashes, new Date(now())))) {
        throw new DomainError("failed_precondition", "MFA is not enabled");
      }
      return { backupCodes: codes };
    },

    async remainingBackupCodes(userId) {
      const factor = await findEnabled(userId);
      return factor ? factor.backupCodes.filter((c) => !c.usedAt).length : 0;
    },
  };
}
