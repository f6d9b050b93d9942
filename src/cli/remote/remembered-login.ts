import { open, rm, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { CommandError } from "../command-error.ts";
import { readStoredLogin, writeStoredLogin, type StoredLogin } from "./credentials-file.ts";

/** Refresh an access token this long before it expires, so that it does not expire in flight. */
export const REFRESH_MARGIN_MS = 30_000;
const LOCK_WAIT_MS = 15_000;
// A lock older than this was left by a process that died mid-refresh.
const STALE_LOCK_MS = 30_000;

/** The part of AuthService.Refresh the remembered login needs. */
export type RefreshCall = (refreshToken: string) => Promise<{
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt?: Timestamp | undefined;
  refreshTokenExpiresAt?: Timestamp | undefined;
  sessionId: string;
}>;

/** A source of access tokens for the remembered login, refreshing it when needed. */
export interface RememberedLogin {
  readonly url: string;
  readonly username: string;
  /**
   * A usable access token: the stored one while it is valid for at least REFRESH_MARGIN_MS, else a
   * refreshed one (saved to the file before it is returned). `rejected` names a token the server has
   * just refused as expired, forcing a refresh even if the stored expiry says otherwise.
   */
  accessToken(options?: { rejected?: string }): Promise<string>;
}

/** The remembered session is over (expired, revoked, logged out): only a new login helps. */
export class LoginEndedError extends CommandError {
  constructor(reason: string) {
    super(`${reason}; run "portcullis login" again`);
  }
}

const loginAgain = (reason: string) => new CommandError(`${reason}; run "portcullis login" again`);

/**
 * Wraps a stored login. Refreshing rotates the refresh token, and presenting a rotated token twice makes
 * the server revoke the whole session, so two CLI processes must never refresh with the same token: the
 * refresh runs under a lock file next to the credentials file, and whoever gets the lock second rereads
 * the file and uses the tokens the first one saved.
 */
export function createRememberedLogin(path: string, initial: StoredLogin, refresh: RefreshCall, now: () => number = Date.now): RememberedLogin {
  let current = initial;
  const fresh = (login: StoredLogin, rejected: string | undefined) => login.accessToken !== rejected && Date.parse(login.accessTokenExpiresAt) - REFRESH_MARGIN_MS > now();

  return {
    url: initial.url,
    username: initial.username,
    async accessToken(options = {}) {
      if (fresh(current, options.rejected)) return current.accessToken;
      return withLock(`${path}.lock`, async () => {
        // Another process may have refreshed while this one waited for the lock.
        const onDisk = await readStoredLogin(path);
        if (onDisk === undefined) throw loginAgain("you were logged out while this command ran");
        if (onDisk.url !== current.url || onDisk.sessionId !== current.sessionId) throw loginAgain("the remembered login changed while this command ran");
        current = onDisk;
        if (fresh(current, options.rejected)) return current.accessToken;
        if (Date.parse(current.refreshTokenExpiresAt) <= now()) throw new LoginEndedError(`your login at ${current.url} has expired`);

        let refreshed;
        try {
          refreshed = await refresh(current.refreshToken);
        } catch (err) {
          if (err instanceof ConnectError && err.code === Code.Unauthenticated) throw new LoginEndedError(`${current.url} ended your login (expired or revoked)`);
          throw err;
        }
        current = {
          ...current,
          accessToken: refreshed.accessToken,
          refreshToken: refreshed.refreshToken,
          accessTokenExpiresAt: isoOf(refreshed.accessTokenExpiresAt, now),
          refreshTokenExpiresAt: isoOf(refreshed.refreshTokenExpiresAt, now),
        };
        await writeStoredLogin(path, current);
        return current.accessToken;
      });
    },
  };
}

/** Converts the server's expiry; a missing one counts as "expires now" so the next call refreshes. */
export function isoOf(timestamp: Timestamp | undefined, now: () => number = Date.now): string {
  return (timestamp ? timestampDate(timestamp) : new Date(now())).toISOString();
}

async function withLock<T>(lockPath: string, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const age = await stat(lockPath).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > STALE_LOCK_MS) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new CommandError(`another portcullis command is refreshing the login (lock file ${lockPath}); try again`);
    await sleep(50);
  }
  try {
    return await work();
  } finally {
    await rm(lockPath, { force: true });
  }
}
