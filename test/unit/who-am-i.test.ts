import { describe, expect, it } from "vitest";
import { AuthMethod } from "../../gen/portcullis/v1/auth_pb.js";
import type { Principal } from "../../src/domain/principal.ts";
import type { UserProfile } from "../../src/domain/users/user-profile.ts";
import { createWhoAmIAnswers } from "../../src/handlers/who-am-i.ts";

const principal: Principal = {
  kind: "user",
  id: "u1",
  userId: "u1",
  displayName: "alice",
  role: "user",
  permissions: new Set(["keys.read", "auth.self"]),
  method: "access_token",
  sessionId: "s1",
  mfaVerified: false,
  credentialExpiresAt: new Date("2026-12-01T00:00:00Z"),
};
const profile: UserProfile = {
  userId: "u1",
  username: "alice",
  email: "alice@example.com",
  role: "user",
  disabled: false,
  mfaEnabled: false,
  createdAt: new Date("2026-01-01T00:00:00Z"),
  updatedAt: new Date("2026-02-01T00:00:00Z"),
  lastLoginAt: undefined,
};

describe("WhoAmI's answers", () => {
  it("are kept for a principal while its user's profile is unchanged, and rebuilt when any field changes", () => {
    const answer = createWhoAmIAnswers();
    const first = answer(principal, profile);
    expect(first.principal?.displayName).toBe("alice");
    expect(first.permissions).toEqual(["auth.self", "keys.read"]);
    expect(first.authMethod).toBe(AuthMethod.PASSWORD);
    // An equal profile read again (a new object with the same fields): the same answer.
    expect(answer(principal, { ...profile, createdAt: new Date(profile.createdAt) })).toBe(first);

    const mfaOn = answer(principal, { ...profile, mfaEnabled: true });
    expect(mfaOn.mfaEnabled).toBe(true);
    expect(mfaOn.user?.mfaEnabled).toBe(true);
    const signedIn = answer(principal, { ...profile, lastLoginAt: new Date("2026-03-01T00:00:00Z") });
    expect(signedIn.user?.lastLoginAt?.seconds).toBe(BigInt(Date.parse("2026-03-01T00:00:00Z") / 1000));
    const renamed = answer(principal, { ...profile, email: "a@example.org" });
    expect(renamed.user?.email).toBe("a@example.org");
  });

  it("are never shared between principals (a demoted user's next principal gets its own)", () => {
    const answer = createWhoAmIAnswers();
    answer(principal, profile);
    const demoted: Principal = { ...principal, permissions: new Set(["auth.self"]) };
    const next = answer(demoted, profile);
    expect(next.permissions).toEqual(["auth.self"]);
  });
});
