import { create } from "@bufbuild/protobuf";
import { AuthMethod, WhoAmIResponseSchema, type WhoAmIResponse } from "../../gen/portcullis/v1/auth_pb.js";
import { PrincipalKind } from "../../gen/portcullis/v1/common_pb.js";
import type { Principal } from "../domain/principal.ts";
import type { UserProfile } from "../domain/users/user-profile.ts";
import { roleToProto, timestamp } from "./converters.ts";
import { createUserMessages } from "./user-messages.ts";

const AUTH_METHODS: Readonly<Record<Principal["method"], AuthMethod>> = {
  access_token: AuthMethod.PASSWORD,
  refreshed_access_token: AuthMethod.REFRESH,
  api_key: AuthMethod.API_KEY,
  exchanged_api_key: AuthMethod.EXCHANGED_API_KEY,
};

/**
 * WhoAmI's answer for a principal and its user's profile. The answer is kept per principal (the
 * authenticators hand out the same principal object for a credential presented again, and a new one
 * when its role, state or permissions change) for as long as the profile it was built from is
 * unchanged, field by field: the same caller asks again and again, and building the message — nested
 * messages, the sorted permissions, four timestamps — costs more than comparing nine fields. The kept
 * answer is a finished message, which connect-es serialises as it is (interceptors never alter an
 * answer's message).
 */
export function createWhoAmIAnswers(): (principal: Principal, user: UserProfile) => WhoAmIResponse {
  const { profileMessage } = createUserMessages({ get: () => Promise.resolve(undefined) });
  const answers = new WeakMap<Principal, { user: UserProfile; answer: WhoAmIResponse }>();
  return (principal, user) => {
    const kept = answers.get(principal);
    if (kept !== undefined && sameProfile(kept.user, user)) return kept.answer;
    const answer = create(WhoAmIResponseSchema, {
      principal: {
        kind: principal.kind === "user" ? PrincipalKind.USER : PrincipalKind.API_KEY,
        id: principal.id,
        displayName: principal.displayName,
        role: roleToProto(principal.role),
        userId: principal.userId,
      },
      user: profileMessage(user),
      permissions: [...principal.permissions].sort(),
      authMethod: AUTH_METHODS[principal.method],
      mfaEnabled: user.mfaEnabled,
      mfaVerified: principal.mfaVerified === true,
      sessionId: principal.sessionId ?? "",
      credentialExpiresAt: timestamp(principal.credentialExpiresAt),
    });
    answers.set(principal, { user, answer });
    return answer;
  };
}

function sameProfile(a: UserProfile, b: UserProfile): boolean {
  return (
    a.userId === b.userId &&
    a.username === b.username &&
    a.email === b.email &&
    a.role === b.role &&
    a.disabled === b.disabled &&
    a.mfaEnabled === b.mfaEnabled &&
    sameTime(a.createdAt, b.createdAt) &&
    sameTime(a.updatedAt, b.updatedAt) &&
    sameTime(a.lastLoginAt, b.lastLoginAt)
  );
}

function sameTime(a: Date | undefined, b: Date | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.getTime() === b.getTime());
}
