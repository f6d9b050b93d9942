import type { ResponseCause } from "../audit/auto-response.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { UserRecord, UsersStore } from "../users/user-record.ts";

/** A temporary lock: the account was disabled by the automatic response until `until`. */
export interface AccountLock {
  readonly id: string;
  readonly userId: string;
  readonly until: Date;
  /** The user's `updatedAt` right after locking: if it moved since, someone changed the account and the lock is not lifted. */
  readonly lockedVersion: Date;
}

/** Where locks live; implemented by `src/store/account-locks-store.ts`. */
export interface AccountLocksStore {
  insert(lock: AccountLock): Promise<void>;
  due(now: Date): Promise<AccountLock[]>;
  remove(id: string): Promise<void>;
}

/** Temporary account locks of the automatic response. */
export interface AccountLocks {
  /** Locks the account with this id or, failing that, this normalised username (a failed login's subject). */
  lock(subject: string, durationMs: number, cause: ResponseCause): Promise<boolean>;
  /** Lifts expired locks; resolves with how many accounts were re-enabled. */
  releaseDue(): Promise<number>;
}

/**
 * Locks accounts for a while (the automatic response's lock_account): the account is disabled and its
 * sessions revoked at once, like an admin's disable, and re-enabled when the lock expires — unless the
 * account changed in between (an admin disabled it for good, or unlocked it already), which wins.
 */
export function createAccountLocks(deps: {
  users: UsersStore;
  locks: AccountLocksStore;
  revokeSessions: (userId: string, reason: string) => Promise<number>;
  noteUserChanged: (user: UserRecord) => void;
  audit: AuditRecorder;
  now?: () => Date;
}): AccountLocks {
  const now = deps.now ?? (() => new Date());
  return {
    async lock(subject, durationMs, cause) {
      const user = (await deps.users.findById(subject)) ?? (await deps.users.findByUsernameKey(subject));
      const userId = user?._id ?? subject;
      if (!user || user.disabled) return false;
      const locked = await deps.users.update(userId, { disabled: true }, { role: user.role, disabled: false });
      if (!locked) return false;
      deps.noteUserChanged(locked);
      await deps.revokeSessions(userId, "auto_response_lock");
      const until = new Date(now().getTime() + durationMs);
      await deps.locks.insert({ id: `${userId}:${now().getTime()}`, userId, until, lockedVersion: locked.updatedAt });
      await deps.audit.recordNow({
        type: "user.lock",
        outcome: "success",
        actor: { kind: "system", display: "auto-response" },
        target: { kind: "user", id: userId },
        reason: `locked until ${until.toISOString()} because of ${cause.kind}`,
        metadata: { finding_kind: cause.kind, until: until.toISOString() },
      });
      return true;
    },
    async releaseDue() {
      let released = 0;
      for (const lock of await deps.locks.due(now())) {
        const user = await deps.users.findById(lock.userId);
        if (user?.disabled && user.updatedAt.getTime() === lock.lockedVersion.getTime()) {
          const enabled = await deps.users.update(lock.userId, { disabled: false }, { role: user.role, disabled: true });
          if (enabled) {
            deps.noteUserChanged(enabled);
            released += 1;
            deps.audit.record({ type: "user.unlock", outcome: "success", actor: { kind: "system", display: "auto-response" }, target: { kind: "user", id: lock.userId } });
          }
        }
        await deps.locks.remove(lock.id);
      }
      return released;
    },
  };
}
