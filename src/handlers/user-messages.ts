import type { SessionRecord } from "../domain/sessions/sessions.ts";
import type { UserProfile, UserProfiles } from "../domain/users/user-profile.ts";
import type { UserRecord } from "../domain/users/user-record.ts";
import { roleToProto, timestamp } from "./converters.ts";

/** The User message of AuthService: from a profile held in memory, or from a record just read or written. */
export function createUserMessages(profiles: UserProfiles) {
  const profileMessage = (profile: UserProfile) => ({
    id: profile.userId,
    username: profile.username,
    email: profile.email ?? "",
    role: roleToProto(profile.role),
    disabled: profile.disabled,
    mfaEnabled: profile.mfaEnabled,
    createdAt: timestamp(profile.createdAt),
    updatedAt: timestamp(profile.updatedAt),
    lastLoginAt: timestamp(profile.lastLoginAt),
  });
  /** A user just read or written: its fields as read, whether MFA is on from memory. */
  const userMessage = async (user: UserRecord) => ({
    id: user._id,
    username: user.username,
    email: user.email ?? "",
    role: roleToProto(user.role),
    disabled: user.disabled,
    mfaEnabled: (await profiles.get(user._id))?.mfaEnabled ?? false,
    createdAt: timestamp(user.createdAt),
    updatedAt: timestamp(user.updatedAt),
    lastLoginAt: timestamp(user.lastLoginAt),
  });
  return { profileMessage, userMessage };
}

/** The Session message; `current` is the caller's own session id. */
export function sessionMessage(session: SessionRecord, current: string | undefined) {
  return {
    id: session.id,
    userId: session.userId,
    createdAt: timestamp(session.createdAt),
    lastUsedAt: timestamp(session.lastUsedAt),
    expiresAt: timestamp(session.expiresAt),
    ip: session.ip,
    userAgent: session.userAgent,
    current: session.id === current,
  };
}
