import { randomBytes } from "node:crypto";
import { DomainError } from "../errors.ts";

const USER_ID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const JOB_ID = new RegExp(`^(${USER_ID})\\.([0-9a-f]{12})[0-9a-f]{12}$`);

/**
 * A new job id: `<owner user id>.<creation time, 12 hex digits of ms><12 random hex digits>`. The owner
 * comes first so that one user's jobs are one `_id` range, newest last, and listing them needs no
 * secondary index (FerretDB pushes little else down); the time keeps ids of one owner in submission order.
 */
export function newJobId(ownerUserId: string, at: Date): string {
  return `${ownerUserId}.${at.getTime().toString(16).padStart(12, "0")}${randomBytes(6).toString("hex")}`;
}

/** The owner of a well-formed job id; INVALID_ARGUMENT for anything else (never a database lookup). */
export function jobOwnerOf(jobId: string): string {
  const match = JOB_ID.exec(jobId);
  if (!match) throw new DomainError("invalid_argument", "job_id is malformed");
  return match[1]!;
}

/** Whether `value` is a user id (the form job ids start with). */
export function isUserId(value: string): boolean {
  return new RegExp(`^${USER_ID}$`).test(value);
}

/** The bounds of one owner's job ids, for `_id` range queries: every id of theirs is inside (lower, upper). */
export function ownerRange(ownerUserId: string): { lower: string; upper: string } {
  // "." < "/" in every collation that compares code points: `<user>.` … `<user>/` holds exactly their jobs.
  return { lower: `${ownerUserId}.`, upper: `${ownerUserId}/` };
}

/** The smallest job id of an owner created at or after `at` (for created-time bounds on the id range). */
export function jobIdFloor(ownerUserId: string, at: Date): string {
  return `${ownerUserId}.${Math.max(0, at.getTime()).toString(16).padStart(12, "0")}`;
}
