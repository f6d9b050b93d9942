import { userAuditActor } from "../audit/audit-actor.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { ClientInfo } from "../principal.ts";
import type { LoginThrottle } from "./login-throttle.ts";
import { auditedCaller } from "../audit/audit-caller.ts";

/** Who proves a secret again, and from where. */
export interface StepUpCaller {
  readonly userId: string;
  /** The user's normalised username: the key of their login lock. */
  readonly usernameKey: string;
  /** The username as the user wrote it: the audit record's display name. */
  readonly username: string;
  readonly client: ClientInfo;
  readonly requestId: string;
}

/**
 * Secrets a signed-in user must prove again — a fresh MFA code for a sensitive action, the current
 * password for ChangePassword — are guessed exactly like passwords at login, so they share the login
 * lock: while the user's (or the address's) lock is on, no such proof is even checked (RESOURCE_EXHAUSTED
 * with reason LOCKED, audited), and every wrong one counts as a failed sign-in of that user and address.
 * A right one does not clear the run: only a full login does, so a session cannot launder an attacker's
 * guesses at the password.
 */
export interface StepUpAttempts {
  /**
   * Runs `check` (which resolves undefined for a wrong secret) under the lock. `auditType` names the
   * audit event of a refusal while locked; wrong secrets are audited by `check` itself.
   */
  attempt<T>(caller: StepUpCaller, auditType: string, check: () => Promise<T | undefined>): Promise<T | undefined>;
}

export function createStepUpAttempts(deps: { throttle: LoginThrottle; audit: AuditRecorder }): StepUpAttempts {
  return {
    async attempt(caller, auditType, check) {
      await deps.throttle.check(caller.usernameKey, caller.client.ip).catch(async (error: unknown) => {
        await deps.audit.recordNow({
          type: auditType,
          outcome: "denied",
          ...auditedCaller(caller),
          actor: userAuditActor(caller.userId, caller.username),
          target: { kind: "user", id: caller.userId },
          reason: "locked after repeated failed sign-ins or step-up attempts",
        });
        throw error;
      });
      const result = await check();
      if (result === undefined) await deps.throttle.recordFailure(caller.usernameKey, caller.client.ip);
      return result;
    },
  };
}
