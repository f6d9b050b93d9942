import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { CommandError } from "../command-error.ts";

/** A remembered login: the tokens of one session on one gateway. */
export interface StoredLogin {
  /** The gateway the tokens belong to; they are never sent anywhere else. */
  readonly url: string;
  readonly username: string;
  readonly sessionId: string;
  readonly accessToken: string;
  /** ISO 8601. */
  readonly accessTokenExpiresAt: string;
  readonly refreshToken: string;
  /** ISO 8601. */
  readonly refreshTokenExpiresAt: string;
}

const FILE_VERSION = 1;
const MAX_FILE_BYTES = 64 * 1024;

/**
 * Where the remembered login lives: PORTCULLIS_CREDENTIALS_FILE, else
 * `$XDG_CONFIG_HOME/portcullis/credentials.json`, else `~/.config/portcullis/credentials.json`.
 */
export function credentialsFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env["PORTCULLIS_CREDENTIALS_FILE"]?.trim();
  if (explicit) return resolve(explicit);
  // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env["XDG_CONFIG_HOME"]?.trim();
  const configHome = xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".config");
  return join(configHome, "portcullis", "credentials.json");
}

/**
 * Reads the remembered login, or undefined when there is none. Refuses (one clear error) a file that
 * group or others may read or write, or that belongs to another user: tokens in such a file must be
 * assumed stolen, and silently tightening the mode would hide that.
 */
export async function readStoredLogin(path: string): Promise<StoredLogin | undefined> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CommandError(`cannot read the credentials file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new CommandError(`the credentials file ${path} is not a regular file`);
    if (process.platform !== "win32") {
      if ((stats.mode & 0o077) !== 0) {
        const mode = (stats.mode & 0o777).toString(8).padStart(4, "0");
        throw new CommandError(`refusing to use the credentials file ${path}: its mode ${mode} lets group or others access it, so its tokens may have been read; delete it and log in again`);
      }
      if (process.getuid !== undefined && stats.uid !== process.getuid()) {
        throw new CommandError(`refusing to use the credentials file ${path}: it belongs to another user`);
      }
    }
    if (stats.size > MAX_FILE_BYTES) throw new CommandError(`the credentials file ${path} is too large to be a Portcullis login`);
    return parseStoredLogin(await handle.readFile("utf8"), path);
  } finally {
    await handle.close();
  }
}

/**
 * Saves the login atomically: a new file created with mode 0600 in the same directory, flushed, then
 * renamed over the old one, so that a crash or a concurrent reader never sees half a file (a lost refresh
 * token would end the session). The directory is created with mode 0700 if missing.
 */
export async function writeStoredLogin(path: string, login: StoredLogin): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temporary, "wx", 0o600);
  try {
    try {
      // The mode argument is filtered by the umask, which can only narrow it; chmod makes it exact.
      await handle.chmod(0o600);
      await handle.writeFile(`${JSON.stringify({ version: FILE_VERSION, ...login }, null, 2)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Forgets the remembered login; true if there was one. */
export async function deleteStoredLogin(path: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

const STRING_FIELDS = ["url", "username", "sessionId", "accessToken", "accessTokenExpiresAt", "refreshToken", "refreshTokenExpiresAt"] as const;

function parseStoredLogin(text: string, path: string): StoredLogin {
  // Never quote the content in an error: it holds tokens.
  const invalid = () => new CommandError(`the credentials file ${path} is not a valid Portcullis login; run "portcullis login" again`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid();
  }
  if (typeof parsed !== "object" || parsed === null || (parsed as { version?: unknown }).version !== FILE_VERSION) throw invalid();
  const record = parsed as Record<string, unknown>;
  const login: Record<string, string> = {};
  for (const field of STRING_FIELDS) {
    const value = record[field];
    if (typeof value !== "string") throw invalid();
    login[field] = value;
  }
  for (const field of ["accessTokenExpiresAt", "refreshTokenExpiresAt"] as const) {
    if (Number.isNaN(Date.parse(login[field]!))) throw invalid();
  }
  return login as unknown as StoredLogin;
}
