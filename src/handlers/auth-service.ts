import type { ServiceImpl } from "@connectrpc/connect";
import { type AuthService, LogoutScope, TokenType } from "../../gen/portcullis/v1/auth_pb.js";
import type { EmergencyRevoke } from "../domain/auth/emergency-revoke.ts";
import type { LoginService } from "../domain/auth/login.ts";
import type { SessionActions } from "../domain/auth/session-actions.ts";
import { DomainError } from "../domain/errors.ts";
import type { MfaActions } from "../domain/auth/mfa-actions.ts";
import type { Principal } from "../domain/principal.ts";
import type { RevocationCache } from "../domain/revocation/revocation-cache.ts";
import type { SigningKeySet } from "../domain/tokens/signing-keys.ts";
import type { UserRecord } from "../domain/users/user-record.ts";
import type { UserProfiles } from "../domain/users/user-profile.ts";
import { isPromotion, type UsersService } from "../domain/users/users.ts";
import type { HandlerContext } from "@connectrpc/connect";
import type { FreshMfaVerifier } from "../domain/auth/authenticator.ts";
import type { RequestContext } from "../domain/request-context.ts";
import { callerOf, originOf } from "./caller.ts";
import { credentialKey } from "./context-keys.ts";
import { roleFromProto, roleToProto, timestamp } from "./converters.ts";
import { createUserMessages, sessionMessage } from "./user-messages.ts";
import { createWhoAmIAnswers } from "./who-am-i.ts";

export interface AuthHandlerDeps {
  readonly login: LoginService;
  readonly users: UsersService;
  /** Users' profiles from memory (WhoAmI, GetTokenInfo, and MFA state in every user message). */
  readonly profiles: UserProfiles;
  readonly mfa: MfaActions;
  readonly sessions: SessionActions;
  readonly emergencyRevoke: EmergencyRevoke;
  readonly signingKeys: SigningKeySet;
  readonly revocations: RevocationCache;
  readonly freshMfa: FreshMfaVerifier;
}

/** GetTokenInfo's empty `token`: the access token that authenticated this call; an API key is none. */
function ownAccessToken(ctx: HandlerContext, principal: Principal): string {
  const credential = ctx.values.get(credentialKey);
  if (principal.method === "api_key" || credential?.kind !== "bearer") {
    throw new DomainError("failed_precondition", "this call was authenticated with an API key, not an access token: pass the token to introspect");
  }
  return credential.value;
}

function userSession(principal: Principal): string {
  if (principal.sessionId === undefined) throw new DomainError("failed_precondition", "this call needs a user session, not an API key");
  return principal.sessionId;
}

/**
 * AuthService: each handler converts the request, calls the domain and converts the answer. Access
 * rules (permissions, fresh MFA for DisableMfa, RegenerateBackupCodes and EmergencyRevoke) are already
 * enforced by the interceptors.
 */
export function createAuthHandlers(deps: AuthHandlerDeps): Partial<ServiceImpl<typeof AuthService>> {
  const { userMessage } = createUserMessages(deps.profiles);
  const whoAmIAnswer = createWhoAmIAnswers();
  // From memory: the instance holds every user's profile within a second of the database.
  const requireProfile = async (userId: string) => {
    const profile = await deps.profiles.get(userId);
    if (!profile) throw new DomainError("not_found", "user not found");
    return profile;
  };
  // Granting admin or owner is as sensitive as the operations whose access rule says fresh_mfa.
  const requireFreshMfa = async (action: RequestContext, code: string) => {
    if (code === "" || !(await deps.freshMfa.verify(action.principal, code, action))) {
      throw new DomainError("permission_denied", "granting admin or owner needs a fresh MFA code", { reason: "fresh_mfa_required" });
    }
  };
  const noteUser = (user: UserRecord) => deps.revocations.noteUserChanged(user._id, { role: user.role, disabled: user.disabled }, user);

  return {
    async login(req, ctx) {
      const tokens = await deps.login.login({
        username: req.username,
        password: req.password,
        mfaCode: req.mfaCode,
        ...originOf(ctx),
      });
      const user = await deps.users.getUser(tokens.userId);
      return {
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
        accessTokenExpiresAt: timestamp(tokens.accessTokenExpiresAt),
        refreshTokenExpiresAt: timestamp(tokens.refreshTokenExpiresAt),
        sessionId: tokens.sessionId,
        user: await userMessage(user),
        ...(tokens.mfaUsed === "backup_code" ? { backupCodesRemaining: await deps.mfa.remainingBackupCodes(user._id) } : {}),
      };
    },

    async refresh(req, ctx) {
      if (req.refreshToken === "") throw new DomainError("invalid_argument", "refresh_token is required");
      const tokens = await deps.login.refresh({ refreshToken: req.refreshToken, ...originOf(ctx) });
      return {
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
        accessTokenExpiresAt: timestamp(tokens.accessTokenExpiresAt),
        refreshTokenExpiresAt: timestamp(tokens.refreshTokenExpiresAt),
        sessionId: tokens.sessionId,
      };
    },

    async logout(req, ctx) {
      const scope = req.scope === LogoutScope.ALL_SESSIONS ? "all" : "current";
      return { sessionsRevoked: await deps.sessions.logout(callerOf(ctx), scope) };
    },

    async revokeToken(req, ctx) {
      const result = await deps.sessions.revokeToken(callerOf(ctx), req.token);
      const tokenType = result.type === "access" ? TokenType.ACCESS : result.type === "refresh" ? TokenType.REFRESH : TokenType.UNSPECIFIED;
      return { revoked: result.revoked, tokenType };
    },

    async getTokenInfo(req, ctx) {
      const action = callerOf(ctx);
      const info = await deps.sessions.tokenInfo(action, req.token === "" ? ownAccessToken(ctx, action.principal) : req.token);
      if (!info.active) return { active: false };
      const user = await deps.profiles.get(info.userId);
      // An access token carries the role it was issued with; a refresh token acts with the current one.
      const role = info.claims?.role ?? user?.role;
      return {
        active: true,
        subject: info.userId,
        sessionId: info.sessionId,
        role: role ? roleToProto(role) : undefined,
        permissions: info.claims?.permissions ?? [],
        issuedAt: timestamp(info.issuedAt),
        expiresAt: timestamp(info.expiresAt),
        tokenType: info.type === "access" ? TokenType.ACCESS : TokenType.REFRESH,
        tokenId: info.claims?.jti ?? "",
        apiKeyId: info.claims?.keyId ?? "",
        username: user?.username ?? "",
      };
    },

    async whoAmI(_req, ctx) {
      const { principal } = callerOf(ctx);
      // No database round trip: the principal and the profile are both held in memory.
      return whoAmIAnswer(principal, await requireProfile(principal.userId));
    },

    getJwks() {
      const jwks = deps.signingKeys.jwks();
      return {
        keys: jwks.keys.map((k) => ({ kty: k.kty ?? "", crv: k.crv ?? "", x: k.x ?? "", y: k.y ?? "", kid: k.kid ?? "", alg: k.alg ?? "", use: k.use ?? "", n: k.n ?? "", e: k.e ?? "" })),
        json: JSON.stringify(jwks),
      };
    },

    async createUser(req, ctx) {
      const action = callerOf(ctx);
      const { principal } = action;
      const role = roleFromProto(req.role);
      if (role !== "user") await requireFreshMfa(action, ctx.requestHeader.get("x-mfa-code") ?? "");
      const user = await deps.users.createUser(principal, { username: req.username, password: req.password, role, ...(req.email ? { email: req.email } : {}) });
      noteUser(user);
      return { user: await userMessage(user) };
    },

    async listUsers(req) {
      const page = await deps.users.listUsers({
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        ...(req.role ? { role: roleFromProto(req.role) } : {}),
        ...(req.disabled !== undefined ? { disabled: req.disabled } : {}),
      });
      return { users: await Promise.all(page.users.map(userMessage)), nextPageToken: page.nextPageToken ?? "" };
    },

    async getUser(req) {
      if (req.userId === "") throw new DomainError("invalid_argument", "user_id is required");
      return { user: await userMessage(await deps.users.getUser(req.userId)) };
    },

    async updateUser(req, ctx) {
      const action = callerOf(ctx);
      const { principal } = action;
      if (req.userId === "") throw new DomainError("invalid_argument", "user_id is required");
      const role = req.role === undefined ? undefined : roleFromProto(req.role);
      const before = await deps.users.getUser(req.userId);
      // Promotions to admin or owner need a fresh code from the caller, whoever is promoted.
      if (role !== undefined && isPromotion(before.role, role) && role !== "user") {
        await requireFreshMfa(action, req.mfaCode || (ctx.requestHeader.get("x-mfa-code") ?? ""));
      }
      if (req.disabled === true && req.userId === principal.userId) throw new DomainError("failed_precondition", "you cannot disable yourself");
      const user = await deps.users.updateUser(principal, req.userId, {
        ...(role !== undefined ? { role } : {}),
        ...(req.disabled !== undefined ? { disabled: req.disabled } : {}),
        ...(req.email !== undefined ? { email: req.email } : {}),
      });
      noteUser(user);
      if (user.disabled && !before.disabled) await deps.sessions.revokeUserSessions(user._id, "user_disabled");
      return { user: await userMessage(user) };
    },

    async changePassword(req, ctx) {
      const action = callerOf(ctx);
      const { principal } = action;
      const sessionId = userSession(principal);
      await deps.users.changePassword(principal.userId, req.currentPassword, req.newPassword, action);
      const sessionsRevoked = req.keepOtherSessions ? 0 : await deps.sessions.revokeUserSessions(principal.userId, "password_changed", sessionId);
      return { sessionsRevoked };
    },

    async beginMfaEnrollment(_req, ctx) {
      const action = callerOf(ctx);
      userSession(action.principal);
      const user = await deps.users.getUser(action.principal.userId);
      const enrollment = await deps.mfa.beginEnrollment(action, user.username);
      return { secret: enrollment.secret, otpauthUri: enrollment.otpauthUri, qrCodePng: enrollment.qrPng, expiresAt: timestamp(new Date(Date.now() + 15 * 60_000)) };
    },

    async confirmMfaEnrollment(req, ctx) {
      const action = callerOf(ctx);
      userSession(action.principal);
      return await deps.mfa.confirmEnrollment(action, req.totpCode);
    },

    async disableMfa(_req, ctx) {
      const action = callerOf(ctx);
      userSession(action.principal);
      await deps.mfa.disable(action);
      return { user: await userMessage(await deps.users.getUser(action.principal.userId)) };
    },

    async regenerateBackupCodes(_req, ctx) {
      const action = callerOf(ctx);
      userSession(action.principal);
      return await deps.mfa.regenerateBackupCodes(action);
    },

    async listSessions(req, ctx) {
      const action = callerOf(ctx);
      if (req.userId !== "" && req.userId !== action.principal.userId) await deps.users.getUser(req.userId);
      const page = await deps.sessions.listSessions(action, req.userId, { pageSize: req.pageSize, pageToken: req.pageToken });
      return { sessions: page.sessions.map((s) => sessionMessage(s, action.principal.sessionId)), nextPageToken: page.nextPageToken };
    },

    async revokeSession(req, ctx) {
      return { revoked: await deps.sessions.revokeSession(callerOf(ctx), req.sessionId) };
    },

    async emergencyRevoke(req, ctx) {
      const result = await deps.emergencyRevoke(callerOf(ctx), req.reason);
      return { sessionsRevoked: BigInt(result.sessionsRevoked), apiKeysRevoked: BigInt(result.apiKeysRevoked), auditEventId: result.auditEventId };
    },
  };
}
