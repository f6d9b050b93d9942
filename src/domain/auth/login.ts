import { ROLE_PERMISSIONS, type Role } from "../permissions.ts";
import { userAuditActor } from "../audit/audit-actor.ts";
import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { MfaService } from "../mfa/mfa.ts";
import type { ClientInfo } from "../principal.ts";
import type { SessionService } from "../sessions/sessions.ts";
import type { AccessTokenService } from "../tokens/access-tokens.ts";
import type { UsersService } from "../users/users.ts";
import { normalizeUsername } from "../users/identifiers.ts";
import type { LoginThrottle } from "./login-throttle.ts";

/** What a successful login or refresh hands the client. */
export interface IssuedTokens {
  readonly accessToken: string;
  readonly accessTokenExpiresAt: Date;
  readonly refreshToken: string;
  readonly refreshTokenExpiresAt: Date;
  readonly sessionId: string;
  readonly userId: string;
  readonly role: Role;
  readonly mfaUsed: "totp" | "backup_code" | undefined;
}

export interface LoginDeps {
  readonly users: UsersService;
  readonly throttle: LoginThrottle;
  readonly mfa: MfaService;
  readonly sessions: SessionService;
  readonly accessTokens: AccessTokenService;
  readonly audit: AuditRecorder;
  /** The user's current role (from the revocation cache or the database). */
  readonly currentRole: (userId: string) => Promise<Role | undefined>;
  /** The user's username, to name the actor of a refresh in the audit log. */
  readonly userName: (userId: string) => Promise<string | undefined>;
}

export interface LoginService {
  login(input: { username: string; password: string; mfaCode: string; client: ClientInfo; requestId: string }): Promise<IssuedTokens>;
  refresh(input: { refreshToken: string; client: ClientInfo; requestId: string }): Promise<IssuedTokens>;
}

const INVALID_LOGIN = "invalid username, password or code";

/**
 * Password login and refresh-token rotation. Login never tells apart an unknown user, a wrong password,
 * a disabled account or a wrong code (one message, similar time: a dummy hash for unknown users); it is
 * throttled per username and per IP, and every attempt is audited with its outcome. MFA_REQUIRED is
 * answered only to a caller who got the password right.
 */
export function createLoginService(deps: LoginDeps): LoginService {
  const issue = async (
    userId: string,
    role: Role,
    sessionId: string,
    refresh: { refreshToken: string; refreshExpiresAt: Date },
    how: { amr: "password" | "refresh"; mfa: boolean; mfaUsed: IssuedTokens["mfaUsed"] },
  ): Promise<IssuedTokens> => {
    const access = await deps.accessTokens.issue({ userId, sessionId, role, permissions: [...ROLE_PERMISSIONS[role]], amr: how.amr, mfa: how.mfa });
    const mfaUsed = how.mfaUsed;
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken: refresh.refreshToken,
      refreshTokenExpiresAt: refresh.refreshExpiresAt,
      sessionId,
      userId,
      role,
      mfaUsed,
    };
  };

  return {
    async login({ username, password, mfaCode, client, requestId }) {
      if (username.trim() === "" || password === "") throw new DomainError("invalid_argument", "username and password are required");
      if (password.length > 1024) throw new DomainError("invalid_argument", "password is too long");
      // A malformed username cannot exist; treat it like an unknown one so the answer is the same.
      let key: string;
      try {
        key = normalizeUsername(username).key;
      } catch {
        key = `invalid:${username.slice(0, 64)}`;
      }
      // Every record below names its actor after this, so the base's anonymous actor is only a default.
      const auditBase = { ...auditedCaller({ client, requestId }), method: "/portcullis.v1.AuthService/Login" };
      const checked = await deps.throttle.check(key, client.ip).catch(async (error: unknown) => {
        await deps.audit.recordNow({ ...auditBase, type: "auth.login", outcome: "denied", actor: { kind: "anonymous" }, reason: "throttled", metadata: { username_key: key.slice(0, 64) } });
        throw error;
      });

      const fail = async (reason: string, user?: { _id: string; username: string }): Promise<never> => {
        await deps.throttle.recordFailure(key, client.ip);
        await deps.audit.recordNow({
          ...auditBase,
          type: "auth.login",
          outcome: "failure",
          actor: user ? userAuditActor(user._id, user.username) : { kind: "anonymous" },
          reason,
          metadata: { username_key: key.slice(0, 64) },
        });
        throw new DomainError("unauthenticated", INVALID_LOGIN);
      };

      const authenticated = await deps.users.authenticatePassword(username, password);
      if (!authenticated) return fail("bad_credentials");
      const user = authenticated.user;

      let mfaUsed: IssuedTokens["mfaUsed"];
      if (await deps.mfa.isEnabled(user._id)) {
        if (mfaCode === "") {
          await deps.audit.recordNow({ ...auditBase, type: "auth.login", outcome: "failure", actor: userAuditActor(user._id, user.username), reason: "mfa_required" });
          throw new DomainError("failed_precondition", "this account requires an MFA code", { reason: "mfa_required" });
        }
        mfaUsed = await deps.mfa.verifyAndConsume(user._id, mfaCode);
        if (!mfaUsed) {
          await deps.audit.recordNow({ ...auditBase, type: "auth.mfa", outcome: "failure", actor: userAuditActor(user._id, user.username), reason: "bad_or_replayed_code" });
          return fail("bad_mfa_code", user);
        }
      }

      await deps.throttle.recordSuccess(key, client.ip, checked);
      await deps.users.touchLastLogin(user._id);
      const session = await deps.sessions.open({ userId: user._id, ip: client.ip, userAgent: client.userAgent, mfaVerified: mfaUsed !== undefined });
      await deps.audit.recordNow({
        ...auditBase,
        type: "auth.login",
        outcome: "success",
        actor: userAuditActor(user._id, user.username),
        target: { kind: "session", id: session.sessionId },
        metadata: { mfa: mfaUsed ?? "none" },
      });
      return issue(user._id, user.role, session.sessionId, session, { amr: "password", mfa: mfaUsed !== undefined, mfaUsed });
    },

    async refresh({ refreshToken, client, requestId }) {
      const rotated = await deps.sessions.rotate(refreshToken, client);
      const role = await deps.currentRole(rotated.userId);
      if (role === undefined) {
        await deps.sessions.revoke(rotated.sessionId, "user_unavailable");
        throw new DomainError("unauthenticated", "invalid refresh token");
      }
      deps.audit.record({
        type: "auth.refresh",
        outcome: "success",
        ...auditedCaller({ client, requestId }),
        actor: userAuditActor(rotated.userId, (await deps.userName(rotated.userId)) ?? rotated.userId),
        target: { kind: "session", id: rotated.sessionId },
      });
      return issue(rotated.userId, role, rotated.sessionId, rotated, { amr: "refresh", mfa: rotated.mfaVerified, mfaUsed: undefined });
    },
  };
}
