import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { MfaMethod, MfaService } from "../mfa/mfa.ts";
import type { RequestContext } from "../request-context.ts";
import type { UsersStore } from "../users/user-record.ts";
import type { FreshMfaVerifier } from "./authenticator.ts";
import type { StepUpAttempts } from "./step-up-attempts.ts";

/**
 * The MFA operations a user performs on their own account (the caller's user, acting in person or
 * through an API key of theirs), each audited (never with a secret or a code). The factor logic itself
 * is in MfaService.
 */
export interface MfaActions {
  isEnabled(userId: string): Promise<boolean>;
  remainingBackupCodes(userId: string): Promise<number>;
  beginEnrollment(ctx: RequestContext, accountName: string): Promise<{ secret: string; otpauthUri: string; qrPng: Uint8Array }>;
  confirmEnrollment(ctx: RequestContext, code: string): Promise<{ backupCodes: string[] }>;
  disable(ctx: RequestContext): Promise<void>;
  regenerateBackupCodes(ctx: RequestContext): Promise<{ backupCodes: string[] }>;
  /** Checks and consumes a fresh code of the caller's user for a sensitive operation; a wrong or replayed one is audited. */
  verifyFresh(ctx: RequestContext, code: string): Promise<MfaMethod | undefined>;
}

export function createMfaActions(deps: { mfa: MfaService; audit: AuditRecorder }): MfaActions {
  const { mfa, audit } = deps;
  const record = (ctx: RequestContext, type: string, outcome: "success" | "failure", metadata?: Record<string, string | number>) =>
    audit.recordNow({ type, outcome, ...auditedCaller(ctx), target: { kind: "user", id: ctx.principal.userId }, ...(metadata ? { metadata } : {}) });

  return {
    isEnabled: (userId) => mfa.isEnabled(userId),
    remainingBackupCodes: (userId) => mfa.remainingBackupCodes(userId),

    async beginEnrollment(ctx, accountName) {
      const enrollment = await mfa.beginEnrollment(ctx.principal.userId, accountName);
      await record(ctx, "mfa.enroll_begin", "success");
      return enrollment;
    },

    async confirmEnrollment(ctx, code) {
      try {
        const result = await mfa.confirmEnrollment(ctx.principal.userId, code);
        await record(ctx, "mfa.enroll_confirm", "success");
        return result;
      } catch (error) {
        await record(ctx, "mfa.enroll_confirm", "failure");
        throw error;
      }
    },

    async disable(ctx) {
      await mfa.disable(ctx.principal.userId);
      await record(ctx, "mfa.disable", "success");
    },

    async regenerateBackupCodes(ctx) {
      const result = await mfa.regenerateBackupCodes(ctx.principal.userId);
      await record(ctx, "mfa.backup_codes_regenerate", "success");
      return result;
    },

    async verifyFresh(ctx, code) {
      const method = await mfa.verifyAndConsume(ctx.principal.userId, code);
      await record(ctx, "mfa.verify", method ? "success" : "failure", { purpose: "fresh", ...(method ? { method } : {}) });
      return method;
    },
  };
}

/**
 * The fresh-MFA check of the authorization interceptor (and of promotions): a code of the principal's
 * user, under the same lock as password guesses at login (step-up attempts).
 */
export function createFreshMfaVerifier(deps: { actions: MfaActions; users: Pick<UsersStore, "findById">; stepUp: StepUpAttempts }): FreshMfaVerifier {
  return {
    async verify(principal, code, call) {
      const user = await deps.users.findById(principal.userId);
      if (!user) return false;
      const caller = { userId: user._id, usernameKey: user.usernameKey, username: user.username, ...call };
      return (await deps.stepUp.attempt(caller, "mfa.verify", () => deps.actions.verifyFresh({ principal, ...call }, code))) !== undefined;
    },
  };
}
