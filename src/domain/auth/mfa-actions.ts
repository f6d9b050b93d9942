import type { AuditActor, AuditRecorder } from "../audit/audit-recorder.ts";
import type { MfaMethod, MfaService } from "../mfa/mfa.ts";
import type { ClientInfo } from "../principal.ts";

/** Whose factor, who is acting (the user, or an API key of theirs) and from where, for the audit record. */
export interface MfaActionContext {
  readonly userId: string;
  readonly actor: AuditActor;
  readonly client?: ClientInfo;
  readonly requestId?: string;
}

/**
 * The MFA operations a user performs on their own account, each audited (never with a secret or a
 * code). The factor logic itself is in MfaService.
 */
export function createMfaActions(deps: { mfa: MfaService; audit: AuditRecorder }) {
  const { mfa, audit } = deps;
  const record = (ctx: MfaActionContext, type: string, outcome: "success" | "failure", metadata?: Record<string, string | number>) =>
    audit.recordNow({
      type,
      outcome,
      actor: ctx.actor,
      target: { kind: "user", id: ctx.userId },
      ...(ctx.client ? { ip: ctx.client.ip, userAgent: ctx.client.userAgent } : {}),
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      ...(metadata ? { metadata } : {}),
    });

  return {
    isEnabled: (userId: string) => mfa.isEnabled(userId),
    remainingBackupCodes: (userId: string) => mfa.remainingBackupCodes(userId),

    async beginEnrollment(ctx: MfaActionContext, accountName: string) {
      const enrollment = await mfa.beginEnrollment(ctx.userId, accountName);
      await record(ctx, "mfa.enroll_begin", "success");
      return enrollment;
    },

    async confirmEnrollment(ctx: MfaActionContext, code: string) {
      try {
        const result = await mfa.confirmEnrollment(ctx.userId, code);
        await record(ctx, "mfa.enroll_confirm", "success");
        return result;
      } catch (error) {
        await record(ctx, "mfa.enroll_confirm", "failure");
        throw error;
      }
    },

    async disable(ctx: MfaActionContext) {
      await mfa.disable(ctx.userId);
      await record(ctx, "mfa.disable", "success");
    },

    async regenerateBackupCodes(ctx: MfaActionContext) {
      const result = await mfa.regenerateBackupCodes(ctx.userId);
      await record(ctx, "mfa.backup_codes_regenerate", "success");
      return result;
    },

    /** Checks and consumes a fresh code for a sensitive operation; a wrong or replayed one is audited. */
    async verifyFresh(userId: string, code: string, ctx: Omit<MfaActionContext, "userId">): Promise<MfaMethod | undefined> {
      const method = await mfa.verifyAndConsume(userId, code);
      await record({ ...ctx, userId }, "mfa.verify", method ? "success" : "failure", { purpose: "fresh", ...(method ? { method } : {}) });
      return method;
    },
  };
}

export type MfaActions = ReturnType<typeof createMfaActions>;
