import { userAuditActor } from "../audit/audit-actor.ts";
import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { StepUpAttempts } from "../auth/step-up-attempts.ts";
import { DomainError } from "../errors.ts";
import type { PasswordHasher } from "../passwords/password-hasher.ts";
import { checkPasswordStrength } from "../passwords/password-policy.ts";
import type { CallOrigin } from "../request-context.ts";
import { normalizeUsername } from "./identifiers.ts";
import type { UserRecord, UsersStore } from "./user-record.ts";

/** A password that meets the policy (strength, not derived from the user's own name or address); INVALID_ARGUMENT otherwise. */
export async function requirePolicy(password: unknown, userInputs: Array<string | undefined>): Promise<string> {
  if (typeof password !== "string") throw new DomainError("invalid_argument", "password is required");
  const strength = await checkPasswordStrength(
    password,
    userInputs.filter((input): input is string => input !== undefined),
  );
  if (!strength.ok) throw new DomainError("invalid_argument", strength.reason);
  return password;
}

/** The password side of UsersService (see its documentation there). */
export interface UserPasswords {
  changePassword(userId: string, current: string, next: string, call?: CallOrigin): Promise<void>;
  authenticatePassword(username: string, password: string): Promise<{ user: UserRecord } | undefined>;
}

/**
 * Checking and changing passwords: argon2id verification (with dummy work for unknown users, so both
 * answers cost the same), transparent re-hashing when the cost grew, and ChangePassword's check of the
 * current password under the login lock when `stepUp` is given.
 */
export function createUserPasswords(deps: {
  usersStore: UsersStore;
  hasher: PasswordHasher;
  audit: AuditRecorder;
  stepUp?: StepUpAttempts;
  requireUser: (id: string) => Promise<UserRecord>;
  now: () => Date;
}): UserPasswords {
  const { usersStore, hasher, audit, now } = deps;
  return {
    async changePassword(userId, current, next, call) {
      const user = await deps.requireUser(userId);
      const check = async () => ((await hasher.verify(user.passwordHash, typeof current === "string" ? current : "")).ok ? true : undefined);
      const verified = deps.stepUp && call ? await deps.stepUp.attempt({ userId, usernameKey: user.usernameKey, username: user.username, ...call }, "user.password_change", check) : await check();
      if (!verified) {
        audit.record({
          type: "user.password_change",
          outcome: "failure",
          ...auditedCaller(call ?? {}),
          actor: userAuditActor(userId, user.username),
          target: { kind: "user", id: userId },
          reason: "current password is incorrect",
        });
        throw new DomainError("permission_denied", "current password is incorrect");
      }
      const password = await requirePolicy(next, [user.username, user.email]);
      if (password.normalize("NFKC") === current.normalize("NFKC")) throw new DomainError("invalid_argument", "the new password must differ from the current one");
      await usersStore.setPasswordHash(userId, await hasher.hash(password), now());
      await audit.recordNow({ type: "user.password_change", outcome: "success", actor: userAuditActor(userId, user.username), target: { kind: "user", id: userId } });
    },

    async authenticatePassword(username, password) {
      const candidate = typeof password === "string" ? password : "";
      let user: UserRecord | undefined;
      try {
        user = await usersStore.findByUsernameKey(normalizeUsername(username).key);
      } catch (err) {
        if (!(err instanceof DomainError)) throw err; // a malformed name is just an unknown user
      }
      if (!user) {
        await hasher.verifyDummy(candidate);
        return undefined;
      }
      // A disabled user's password is checked too: the same work and the same answer as a wrong one.
      const result = await hasher.verify(user.passwordHash, candidate);
      if (!result.ok || user.disabled) return undefined;
      if (result.needsRehash) {
        const passwordHash = await hasher.hash(candidate);
        await usersStore.setPasswordHash(user._id, passwordHash);
        user = { ...user, passwordHash };
      }
      return { user };
    },
  };
}
