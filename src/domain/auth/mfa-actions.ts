import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditEventInput, AuditRecorder } from "../audit/audit-recorder.ts";
import type { MfaMethod, MfaService } from "../mfa/mfa.ts";
import type { RequestContext } from "../request-context.ts";
import type { FreshMfaVerifier } from "./authenticator.ts";

/**
 * The MFA operations a user performs on their own account (the caller's user), each audited (never
 * with a secret or a code). The factor logic itself is in MfaService.
 */
export interface MfaActions {
  isEnabled(userId: string): Promise<boolean>;
  remainingBackupCodes(userId: string): Promise<number>;
  beginEnrollment(ctx: RequestContext, accountName: string): Promise<{ secret: string; otpauthUri: string; qrPng: Uint8Array }>;
  confirmEnrollment(ctx: RequestContext, code: string): Promise<{ backupCodes: string[] }>;
  disable(ctx: RequestContext): Promise<void>;
  regenerateBackupCodes(ctx: RequestContext): Promise<{ backupCodes: string[] }>;
  /** Checks and consumes a fresh code for a sensitive operation; a wrong or replayed one is audited. */
  verifyFresh(userId: string, code: string): Promise<MfaMethod | undefined>;
}

export function createMfaActions(deps: { mfa: MfaService; audit: AuditRecorder }): MfaActions {
  const { mfa, audit } = deps;
  const record = (who: Pick<AuditEventInput, "actor" | "ip" | "userAgent" | "requestId">, userId: string, type: string, outcome: "success" | "failure", metadata?: Record<string, string | number>) =>
    audit.recordNow({ type, outcome, ...who, target: { kind: "user", id: userId }, ...(metadata ? { metadata } : {}) });
  const byCaller = (ctx: RequestContext, type: string, outcome: "success" | "failure") => record(auditedCaller(ctx), ctx.principal.userId, type, outcome);

  return {
    isEnabled: (userId) => mfa.isEnabled(userId),
    remainingBackupCodes: (userId) => mfa.remainingBackupCodes(userId),

    async beginEnrollment(ctx, accountName) {
      const enrollment = await mfa.beginEnrollment(ctx.principal.userId, accountName);
      await byCaller(ctx, "mfa.enroll_begin", "success");
      return enrollment;
    },

    async confirmEnrollment(ctx, code) {
      try {
        const result = await mfa.confirmEnrollment(ctx.principal.userId, code);
        await byCaller(ctx, "mfa.enroll_confirm", "success");
        return result;
      } catch (error) {
        await byCaller(ctx, "mfa.enroll_confirm", "failure");
        throw error;
      }
    },

    async disable(ctx) {
      await mfa.disable(ctx.principal.userId);
      await byCaller(ctx, "mfa.disable", "success");
    },

    async regenerateBackupCodes(ctx) {
      const result = await mfa.regenerateBackupCodes(ctx.principal.userId);
      await byCaller(ctx, "mfa.backup_codes_regenerate", "success");
      return result;
    },

    async verifyFresh(userId, code) {
      const method = await mfa.verifyAndConsume(userId, code);
      await record({ actor: { kind: "user", id: userId } }, userId, "mfa.verify", method ? "success" : "failure", { purpose: "fresh", ...(method ? { method } : {}) });
      return method;
    },
  };
}

/** The fresh-MFA check of the authorization interceptor (and of promotions): the principal's user's code. */
export function createFreshMfaVerifier(actions: MfaActions): FreshMfaVerifier {
  return {
    async verify(principal, code) {
      return (await actions.verifyFresh(principal.userId, code)) !== undefined;
    },
  };
}
