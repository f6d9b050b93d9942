import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Role as DomainRole } from "../access/permissions.ts";
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
