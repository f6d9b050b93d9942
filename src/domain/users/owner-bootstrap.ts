import { randomUUID } from "node:crypto";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { UserRecord, UsersStore } from "./user-record.ts";

/** How old an abandoned bootstrap claim must be before another run may take it over. */
const BOOTSTRAP_CLAIM_STALE_MS = 5 * 60_000;

/**
 * UsersService.bootstrapOwner: the first owner, made by exactly one of several runs racing. Each run
 * first claims the one bootstrap by inserting a fixed-id document; the others are refused. A claim
 * whose run died before making its owner is taken over once it is stale.
 */
export function createOwnerBootstrap(deps: {
  usersStore: UsersStore;
  audit: AuditRecorder;
  /** Checks and inserts the owner with this id (the password policy applies as to every user). */
  insertOwner: (input: { username: string; password: string; email?: string }, id: string) => Promise<UserRecord>;
  now: () => Date;
}): (input: { username: string; password: string; email?: string }) => Promise<UserRecord> {
  const { usersStore, audit, now } = deps;

  async function claimBootstrap(id: string): Promise<void> {
    const held = await usersStore.claimBootstrap(id, now());
    if (held === "claimed") return;
    const refused = new DomainError("failed_precondition", "an owner already exists, or another bootstrap-owner run is creating one");
    // A claim whose run died before making its owner would block bootstrap forever: once it is old
    // enough that no live run can still be hashing, and its owner never appeared, it is taken over.
    if (now().getTime() - held.at.getTime() < BOOTSTRAP_CLAIM_STALE_MS || (await usersStore.findById(held.userId))) throw refused;
    await usersStore.releaseBootstrap(held.userId);
    if ((await usersStore.claimBootstrap(id, now())) !== "claimed") throw refused;
  }

  return async (input) => {
    if (await usersStore.anyOwnerExists()) throw new DomainError("failed_precondition", "an owner already exists");
    // Two runs at once must not both make an owner: only the run that inserts the claim goes on.
    const id = randomUUID();
    await claimBootstrap(id);
    let user: UserRecord;
    try {
      user = await deps.insertOwner(input, id);
    } catch (err) {
      await usersStore.releaseBootstrap(id);
      throw err;
    }
    await audit.recordNow({
      type: "user.bootstrap_owner",
      outcome: "success",
      actor: { kind: "system", display: "bootstrap-owner" },
      target: { kind: "user", id: user._id },
      metadata: { username: user.username, role: user.role },
    });
    return user;
  };
}
