import { timestampFromDate, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Role as DomainRole } from "../domain/permissions.ts";
import { Role } from "../../gen/portcullis/v1/common_pb.js";
import { DomainError } from "../domain/errors.ts";

const TO_PROTO: Readonly<Record<DomainRole, Role>> = { user: Role.USER, admin: Role.ADMIN, owner: Role.OWNER };

export function roleToProto(role: DomainRole): Role {
  return TO_PROTO[role];
}

/** A role from a request; ROLE_UNSPECIFIED and unknown numbers are INVALID_ARGUMENT. */
export function roleFromProto(role: Role, field = "role"): DomainRole {
  switch (role) {
    case Role.USER:
      return "user";
    case Role.ADMIN:
      return "admin";
    case Role.OWNER:
      return "owner";
    default:
      throw new DomainError("invalid_argument", `${field} must be ROLE_USER, ROLE_ADMIN or ROLE_OWNER`);
  }
}

export function timestamp(date: Date | undefined): Timestamp | undefined {
  return date ? timestampFromDate(date) : undefined;
}

/** A protobuf Duration in milliseconds; undefined when unset. Out-of-range values are INVALID_ARGUMENT. */
export function durationMs(duration: Duration | undefined, field: string): number | undefined {
  if (duration === undefined) return undefined;
  const seconds = Number(duration.seconds);
  if (!Number.isSafeInteger(seconds) || Math.abs(duration.nanos) > 999_999_999 || (seconds > 0 && duration.nanos < 0) || (seconds < 0 && duration.nanos > 0)) {
    throw new DomainError("invalid_argument", `${field} is not a valid duration`);
  }
  return seconds * 1000 + Math.trunc(duration.nanos / 1_000_000);
}
