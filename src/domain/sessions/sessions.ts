import { createHash, randomBytes, randomUUID } from "node:crypto";
import { DomainError } from "../errors.ts";

/**
 * One sign-in. `expiresAt` is when its current refresh token expires (it moves on every rotation); a
 * session is active while it is neither revoked nor expired. Revocation is final.
 */
export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date;
  readonly expiresAt: Date;
  /** The client as last seen (at open, then at each rotation). */
  readonly ip: string;
  readonly userAgent: string;
  readonly revokedAt?: Date;
  readonly revokeReason?: string;
  /** Whether the login that opened the session gave an MFA code; refreshed tokens carry it on. */
  readonly mfaVerified?: boolean;
}

/** A refresh token as stored: only its SHA-256 hash identifies it. */
export interface RefreshTokenRecord {
  /** Hex SHA-256 of the token string. */
  readonly hash: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** When the token was exchanged for its successor; set once. */
  readonly usedAt?: Date;
}

/**
 * Where sessions live; implemented by `src/store/sessions-store.ts`. A revocation must never be lost to
 * a concurrent `touch`, and of concurrent revocations of one session exactly one reports true.
 */
export interface SessionsStore {
  insert(session: SessionRecord): Promise<void>;
  /** The session with its revocation, if any. */
  get(id: string): Promise<SessionRecord | undefined>;
  /**
   * Records a rotation (activity and the new expiry); false when the session is gone. Only the holder of
   * the session's live refresh token calls it, so calls for one session never overlap.
   */
  touch(id: string, update: { lastUsedAt: Date; expiresAt: Date; ip: string; userAgent: string }): Promise<boolean>;
  /** Revokes one existing session unless already revoked; true when this call revoked it. */
  revoke(id: string, reason: string, at: Date): Promise<boolean>;
  /**
   * Records the revocation of an id that has no session document (the `sid` of a token from
   * ExchangeApiKey), kept until `expiresAt` (when the token dies anyway); true when this call recorded it.
   */
  revokeStandalone(id: string, userId: string, reason: string, at: Date, expiresAt: Date): Promise<boolean>;
  /** Revokes every unrevoked session of a user (but `exceptId`); returns how many. */
  revokeAllForUser(userId: string, reason: string, at: Date, exceptId?: string): Promise<number>;
  /** Revokes every unrevoked session (but `exceptId`); returns how many. */
  revokeAll(reason: string, at: Date, exceptId?: string): Promise<number>;
  /** A user's sessions that are neither revoked nor expired at `now`, most recently used first. */
  listActiveForUser(userId: string, now: Date): Promise<SessionRecord[]>;
}

/** Where refresh tokens live; implemented by `src/store/refresh-tokens-store.ts`. */
export interface RefreshTokensStore {
  insert(token: RefreshTokenRecord): Promise<void>;
  find(hash: string): Promise<RefreshTokenRecord | undefined>;
  /**
   * Claims a token for one rotation. "claimed": this call is the first to claim it, and it was unexpired
   * at `at`; "used": it was claimed before (a replay, or the loser of a race — of concurrent claims
   * exactly one wins); "invalid": unknown, or expired and never claimed.
   */
  claim(hash: string, at: Date): Promise<{ outcome: "claimed" | "used"; token: RefreshTokenRecord } | { outcome: "invalid" }>;
}

export interface SessionService {
  /** Starts a session and returns its first refresh token (shown to the client once, stored only hashed). */
  open(input: { userId: string; ip: string; userAgent: string; mfaVerified?: boolean }): Promise<{ sessionId: string; refreshToken: string; refreshExpiresAt: Date }>;
  /**
   * Exchanges a refresh token for its successor on the same session and extends the session. Each token
   * works once: presenting a used token again means two parties hold it, so the whole session is revoked
   * (`onReuse` is told, for the audit log) and the call fails with reason "credential_revoked". An
   * unknown, malformed or expired token, or one of a revoked or expired session, fails with
   * "invalid refresh token". Malformed tokens are refused without touching the database.
   */
  rotate(refreshToken: string, client: { ip: string; userAgent: string }): Promise<{ sessionId: string; userId: string; refreshToken: string; refreshExpiresAt: Date; mfaVerified: boolean }>;
  /** Revokes a session; false when it is unknown or already revoked. */
  revoke(sessionId: string, reason: string): Promise<boolean>;
  /**
   * Revokes the one token behind a session id that has no session (an exchanged API key's token),
   * until `expiresAt`; false when it was already revoked. Instances learn it like any session revocation.
   */
  revokeStandalone(id: string, userId: string, reason: string, expiresAt: Date): Promise<boolean>;
  /** Revokes every session of a user except `exceptSessionId` (e.g. "sign out everywhere else"). */
  revokeAllForUser(userId: string, reason: string, exceptSessionId?: string): Promise<number>;
  /** Emergency: revokes every session of every user except `exceptSessionId`. */
  revokeAll(reason: string, exceptSessionId?: string): Promise<number>;
  get(sessionId: string): Promise<SessionRecord | undefined>;
  /** The user's active (not revoked, not expired) sessions, most recently used first. */
  listForUser(userId: string): Promise<SessionRecord[]>;
  /**
   * The session a refresh token belongs to, without using the token (for RevokeToken / GetTokenInfo).
   * Returns it whatever its state — revoked or expired included; undefined for an unknown or malformed token.
   */
  findByRefreshToken(refreshToken: string): Promise<SessionRecord | undefined>;
  /**
   * A refresh token as stored (when issued, until when, whether already exchanged) with its session,
   * without using the token; undefined for an unknown or malformed token or a session that is gone.
   */
  describeRefreshToken(refreshToken: string): Promise<{ token: RefreshTokenRecord; session: SessionRecord } | undefined>;
}

export interface SessionServiceDeps {
  sessions: SessionsStore;
  refreshTokens: RefreshTokensStore;
  /** Lifetime of each refresh token, and so of an idle session. Default 7 days. */
  refreshTtlMs?: number;
  now?: () => number;
  /** Told about a refresh-token replay after the session is revoked. Must not throw (errors are ignored). */
  onReuse?: (session: SessionRecord) => void;
}

const REFRESH_TOKEN_PREFIX = "rt_";
const REFRESH_TOKEN_BYTES = 32;
// 32 bytes are 43 base64url characters without padding.
const REFRESH_TOKEN_FORMAT = /^rt_[A-Za-z0-9_-]{43}$/;
const DEFAULT_REFRESH_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** The revoke reason recorded when a refresh token is replayed. */
export const REUSE_REVOKE_REASON = "refresh_token_reuse";

/** Whether `token` looks like a refresh token we issue; anything else never reaches the database. */
export function isRefreshTokenFormat(token: unknown): token is string {
  return typeof token === "string" && REFRESH_TOKEN_FORMAT.test(token);
}

/** The stored identifier of a refresh token. A plain hash suffices: the token has 256 random bits. */
export function hashRefreshToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Creates the session service over its two stores. */
export function createSessionService(deps: SessionServiceDeps): SessionService {
  const now = deps.now ?? Date.now;
  const refreshTtlMs = deps.refreshTtlMs ?? DEFAULT_REFRESH_TTL_MS;
  const invalid = () => new DomainError("unauthenticated", "invalid refresh token");

  const issueRefreshToken = async (sessionId: string, userId: string, at: number) => {
    const refreshToken = REFRESH_TOKEN_PREFIX + randomBytes(REFRESH_TOKEN_BYTES).toString("base64url");
    const refreshExpiresAt = new Date(at + refreshTtlMs);
    await deps.refreshTokens.insert({ hash: hashRefreshToken(refreshToken), sessionId, userId, createdAt: new Date(at), expiresAt: refreshExpiresAt });
    return { refreshToken, refreshExpiresAt };
  };

  const isActive = (session: SessionRecord | undefined, at: number): session is SessionRecord => session !== undefined && session.revokedAt === undefined && session.expiresAt.getTime() > at;

  const handleReplay = async (token: RefreshTokenRecord): Promise<never> => {
    await deps.sessions.revoke(token.sessionId, REUSE_REVOKE_REASON, new Date(now()));
    const session = await deps.sessions.get(token.sessionId);
    if (session && deps.onReuse) {
      try {
        deps.onReuse(session);
      } catch {
        // The revocation stands whatever the observer does.
      }
    }
    throw new DomainError("unauthenticated", "refresh token reused; session revoked", { reason: "credential_revoked" });
  };

  return {
    async open(input) {
      const at = now();
      const sessionId = randomUUID();
      await deps.sessions.insert({
        id: sessionId,
        userId: input.userId,
        createdAt: new Date(at),
        lastUsedAt: new Date(at),
        expiresAt: new Date(at + refreshTtlMs),
        ip: input.ip,
        userAgent: input.userAgent,
        ...(input.mfaVerified ? { mfaVerified: true } : {}),
      });
      const { refreshToken, refreshExpiresAt } = await issueRefreshToken(sessionId, input.userId, at);
      return { sessionId, refreshToken, refreshExpiresAt };
    },

    async rotate(refreshToken, client) {
      if (!isRefreshTokenFormat(refreshToken)) throw invalid();
      const hash = hashRefreshToken(refreshToken);
      const at = now();

      // 1. Claim the token. Only one caller can: a concurrent or later use finds it used.
      const claim = await deps.refreshTokens.claim(hash, new Date(at));
      if (claim.outcome === "invalid") throw invalid();
      if (claim.outcome === "used") return handleReplay(claim.token);
      const claimed = claim.token;

      // 2. The session must still be alive; a revoked session's tokens are dead even if unused.
      const session = await deps.sessions.get(claimed.sessionId);
      if (!isActive(session, at)) throw invalid();

      // 3. Hand out the successor and extend the session. A revocation racing with us still wins: it is
      //    stored apart from what touch writes, and the successor of a revoked session is refused on use.
      const { refreshToken: next, refreshExpiresAt } = await issueRefreshToken(session.id, session.userId, at);
      const touched = await deps.sessions.touch(session.id, { lastUsedAt: new Date(at), expiresAt: refreshExpiresAt, ip: client.ip, userAgent: client.userAgent });
      if (!touched) throw invalid();
      return { sessionId: session.id, userId: session.userId, refreshToken: next, refreshExpiresAt, mfaVerified: session.mfaVerified === true };
    },

    revoke: (sessionId, reason) => deps.sessions.revoke(sessionId, reason, new Date(now())),
    revokeStandalone: (id, userId, reason, expiresAt) => deps.sessions.revokeStandalone(id, userId, reason, new Date(now()), expiresAt),
    revokeAllForUser: (userId, reason, exceptSessionId) => deps.sessions.revokeAllForUser(userId, reason, new Date(now()), exceptSessionId),
    revokeAll: (reason, exceptSessionId) => deps.sessions.revokeAll(reason, new Date(now()), exceptSessionId),
    get: (sessionId) => deps.sessions.get(sessionId),
    listForUser: (userId) => deps.sessions.listActiveForUser(userId, new Date(now())),

    async findByRefreshToken(refreshToken) {
      if (!isRefreshTokenFormat(refreshToken)) return undefined;
      const token = await deps.refreshTokens.find(hashRefreshToken(refreshToken));
      return token ? deps.sessions.get(token.sessionId) : undefined;
    },

    async describeRefreshToken(refreshToken) {
      if (!isRefreshTokenFormat(refreshToken)) return undefined;
      const token = await deps.refreshTokens.find(hashRefreshToken(refreshToken));
      const session = token && (await deps.sessions.get(token.sessionId));
      return token && session ? { token, session } : undefined;
    },
  };
}
