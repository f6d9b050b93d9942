import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { Principal } from "../principal.ts";
import type { RequestContext } from "../request-context.ts";
import type { RevocationCache } from "../revocation/revocation-cache.ts";
import type { UserStateReader } from "../revocation/user-state.ts";
import type { SessionRecord, SessionService } from "../sessions/sessions.ts";
import type { AccessTokenClaims, AccessTokenService } from "../tokens/access-tokens.ts";
import { mayActOnUser } from "../users/role-hierarchy.ts";
import { decodePageToken, encodePageToken, resolvePageSize } from "../users/user-paging.ts";

/** What introspection may tell about a token (RFC 7662 style): nothing at all when inactive. */
export type TokenInfo =
  | { readonly active: false }
  | {
      readonly active: true;
      readonly type: "access" | "refresh";
      readonly userId: string;
      /** The login session; "" for a token from ExchangeApiKey, which belongs to no session. */
      readonly sessionId: string;
      readonly claims?: AccessTokenClaims;
      readonly expiresAt: Date;
      readonly issuedAt: Date;
    };

export interface SessionActionsDeps {
  readonly sessions: SessionService;
  readonly accessTokens: AccessTokenService;
  readonly revocations: RevocationCache;
  readonly audit: AuditRecorder;
  /** A user's current role (and disabled flag), for the role hierarchy of revoking others' sessions. */
  readonly userState: UserStateReader;
}

/** Logout, token revocation and introspection, and session management, on behalf of a caller. */
export interface SessionActions {
  /** Ends the caller's current session, or all of the caller's sessions; resolves with how many. */
  logout(ctx: RequestContext, scope: "current" | "all"): Promise<number>;
  /**
   * RevokeToken (RFC 7009). A token of a login session — access or refresh — ends that whole session:
   * its refresh token and every access token issued for it stop working. A token from ExchangeApiKey
   * has no session and is revoked alone (its key keeps working). Revocations reach every instance
   * within a poll interval; an inactive token (unknown, expired, exchanged, revoked) revokes nothing.
   */
  revokeToken(ctx: RequestContext, token: string): Promise<{ revoked: boolean; type: "access" | "refresh" | undefined }>;
  /** What a token is and whether it is live; another user's needs `users.manage`. */
  tokenInfo(ctx: RequestContext, token: string): Promise<TokenInfo>;
  /** A page of a user's active sessions, newest first (default 50, at most 500 per page). */
  listSessions(ctx: RequestContext, userId: string, page?: { pageSize?: number; pageToken?: string }): Promise<{ sessions: SessionRecord[]; nextPageToken: string }>;
  /** Revokes one session; a session the caller may not see answers NOT_FOUND. */
  revokeSession(ctx: RequestContext, sessionId: string): Promise<boolean>;
  /** Ends every session of a user (after a password change, or when the user is disabled). */
  revokeUserSessions(userId: string, reason: string, exceptSessionId?: string): Promise<number>;
}

const REFRESH_PREFIX = "rt_";

/**
 * Logout, token revocation and introspection, and session management. A user acts on their own
 * sessions; `users.manage` extends reads to everyone's and revocation as far as the role hierarchy
 * allows (`mayActOnUser`: an admin ends plain users' sessions, never an owner's or another admin's;
 * refused with PERMISSION_DENIED, audited). Another user's session answers NOT_FOUND to those who may
 * not see it, so existence does not leak.
 */
export function createSessionActions(deps: SessionActionsDeps): SessionActions {
  const mayManageOthers = (principal: Principal) => principal.permissions.has("users.manage");

  const audit = (ctx: RequestContext, type: string, target: { kind: string; id: string } | undefined, metadata?: Record<string, string | number>) =>
    deps.audit.recordNow({
      type,
      outcome: "success",
      ...auditedCaller(ctx),
      ...(target ? { target } : {}),
      ...(metadata ? { metadata } : {}),
    });

  const revokeOne = async (sessionId: string, reason: string) => {
    const revoked = await deps.sessions.revoke(sessionId, reason);
    deps.revocations.noteSessionRevoked(sessionId);
    return revoked;
  };

  const revokeUserSessions = async (userId: string, reason: string, exceptSessionId?: string): Promise<number> => {
    // Read the live sessions first: afterwards they are no longer "live" and could not be named.
    const live = await deps.sessions.listForUser(userId);
    const count = await deps.sessions.revokeAllForUser(userId, reason, exceptSessionId);
    for (const session of live) if (session.id !== exceptSessionId) deps.revocations.noteSessionRevoked(session.id);
    return count;
  };

  /**
   * What a token is and whether it works now, without trusting a revoked or expired one. A refresh token
   * is active until it is exchanged (Refresh), expires, or its session ends.
   */
  const resolve = async (token: string): Promise<TokenInfo & { session?: SessionRecord }> => {
    if (token.startsWith(REFRESH_PREFIX)) {
      const found = await deps.sessions.describeRefreshToken(token);
      const now = Date.now();
      if (!found) return { active: false };
      const { token: stored, session } = found;
      if (stored.usedAt || stored.expiresAt.getTime() <= now || session.revokedAt || session.expiresAt.getTime() <= now) return { active: false };
      return { active: true, type: "refresh", userId: session.userId, sessionId: session.id, expiresAt: stored.expiresAt, issuedAt: stored.createdAt, session };
    }
    const claims = await deps.accessTokens.verify(token).catch(() => undefined);
    if (!claims || deps.revocations.isSessionRevoked(claims.sid)) return { active: false };
    const sessionId = claims.amr === "api_key" ? "" : claims.sid;
    return { active: true, type: "access", userId: claims.sub, sessionId, claims, expiresAt: new Date(claims.exp * 1000), issuedAt: new Date(claims.iat * 1000) };
  };

  /** Refuses revoking another user's session when the role hierarchy says no; audited first. */
  const requireMayRevoke = async (ctx: RequestContext, type: string, owner: string, sessionId: string): Promise<void> => {
    if (mayActOnUser(ctx.principal, { userId: owner, role: owner === ctx.principal.userId ? ctx.principal.role : (await deps.userState(owner))?.role })) return;
    const message = "your role may not revoke this user's sessions";
    deps.audit.record({ type, outcome: "denied", ...auditedCaller(ctx), target: { kind: "session", id: sessionId }, reason: message });
    throw new DomainError("permission_denied", message);
  };

  const requireSession = (ctx: RequestContext): string => {
    if (ctx.principal.sessionId === undefined) throw new DomainError("failed_precondition", "API keys have no session");
    return ctx.principal.sessionId;
  };

  return {
    async logout(ctx: RequestContext, scope: "current" | "all"): Promise<number> {
      if (scope === "all") {
        const count = await revokeUserSessions(ctx.principal.userId, "logout_all");
        await audit(ctx, "auth.logout", { kind: "user", id: ctx.principal.userId }, { scope, sessions: count });
        return count;
      }
      const sessionId = requireSession(ctx);
      const revoked = await revokeOne(sessionId, "logout");
      await audit(ctx, "auth.logout", { kind: "session", id: sessionId }, { scope });
      return revoked ? 1 : 0;
    },

    async revokeToken(ctx: RequestContext, token: string): Promise<{ revoked: boolean; type: "access" | "refresh" | undefined }> {
      if (token === "") throw new DomainError("invalid_argument", "token is required");
      const info = await resolve(token);
      if (!info.active) return { revoked: false, type: undefined };
      if (info.userId !== ctx.principal.userId && !mayManageOthers(ctx.principal)) {
        throw new DomainError("permission_denied", "the token belongs to another user");
      }
      await requireMayRevoke(ctx, "auth.token_revoke", info.userId, info.sessionId);
      if (info.claims?.amr === "api_key") {
        const revoked = await deps.sessions.revokeStandalone(info.claims.sid, info.userId, "token_revoked", info.expiresAt);
        deps.revocations.noteSessionRevoked(info.claims.sid);
        await audit(ctx, "auth.token_revoke", { kind: "token", id: info.claims.jti }, { token_type: info.type, api_key_id: info.claims.keyId ?? "" });
        return { revoked, type: info.type };
      }
      const revoked = await revokeOne(info.sessionId, "token_revoked");
      await audit(ctx, "auth.token_revoke", { kind: "session", id: info.sessionId }, { token_type: info.type });
      return { revoked, type: info.type };
    },

    async tokenInfo(ctx: RequestContext, token: string): Promise<TokenInfo> {
      if (token === "") throw new DomainError("invalid_argument", "token is required");
      const info = await resolve(token);
      if (!info.active) return { active: false };
      if (info.userId !== ctx.principal.userId && !mayManageOthers(ctx.principal)) {
        throw new DomainError("permission_denied", "the token belongs to another user");
      }
      const { session: _session, ...visible } = info;
      return visible;
    },

    /** A page of a user's active sessions, newest first (default 50, at most 500 per page). */
    async listSessions(ctx: RequestContext, userId: string, page: { pageSize?: number; pageToken?: string } = {}): Promise<{ sessions: SessionRecord[]; nextPageToken: string }> {
      const target = userId === "" ? ctx.principal.userId : userId;
      if (target !== ctx.principal.userId && !mayManageOthers(ctx.principal)) throw new DomainError("permission_denied", "listing another user's sessions needs users.manage");
      const pageSize = resolvePageSize(page.pageSize);
      const after = sessionPosition(decodePageToken(page.pageToken, SESSION_POSITION));
      if (target !== ctx.principal.userId) {
        deps.audit.record({ type: "auth.sessions_list", outcome: "success", ...auditedCaller(ctx), target: { kind: "user", id: target } });
      }
      // A user's live sessions are few (each ends within the refresh lifetime), so they are read whole
      // and paged here, by (createdAt, id) descending: a stable order a token can resume from.
      const ordered = (await deps.sessions.listForUser(target)).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      const rest = after ? ordered.filter((s) => s.createdAt.getTime() < after.createdAtMs || (s.createdAt.getTime() === after.createdAtMs && s.id < after.id)) : ordered;
      const sessions = rest.slice(0, pageSize);
      const last = sessions[sessions.length - 1];
      return { sessions, nextPageToken: rest.length > pageSize && last ? encodePageToken(`${last.createdAt.getTime()}:${last.id}`) : "" };
    },

    async revokeSession(ctx: RequestContext, sessionId: string): Promise<boolean> {
      const session = sessionId === "" ? undefined : await deps.sessions.get(sessionId);
      if (!session || (session.userId !== ctx.principal.userId && !mayManageOthers(ctx.principal))) {
        throw new DomainError("not_found", "no such session");
      }
      await requireMayRevoke(ctx, "auth.session_revoke", session.userId, session.id);
      const revoked = await revokeOne(session.id, "session_revoked");
      await audit(ctx, "auth.session_revoke", { kind: "session", id: session.id }, { owner: session.userId });
      return revoked;
    },

    /** Ends every session of a user (after a password change, or when the user is disabled). */
    revokeUserSessions,
  };
}

/** Where a ListSessions page ended: "<createdAt ms>:<session id>" of its last session. */
const SESSION_POSITION = /^(\d{1,15}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

function sessionPosition(position: string | undefined): { createdAtMs: number; id: string } | undefined {
  const match = position === undefined ? null : SESSION_POSITION.exec(position);
  return match ? { createdAtMs: Number(match[1]), id: match[2]! } : undefined;
}
