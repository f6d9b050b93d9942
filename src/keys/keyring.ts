import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { createSigningKey, type SigningKey, type SigningKeyFile } from "../domain/tokens/signing-key.ts";

/** The server's secret key material. Never logged, never sent. */
export interface Keyring {
  /** AES-256-GCM key for secrets at rest. */
  readonly encryptionKey: Buffer;
  /** HMAC-SHA-256 key for API-key hashes. */
  readonly apiKeyPepper: Buffer;
  /** Signing keys, newest first. */
  readonly signingKeys: readonly SigningKey[];
}

interface KeyFile {
  version: 1;
  encryptionKey: string;
  apiKeyPepper: string;
  signingKeys: SigningKey[];
}

/** The key file exists but can't be used; the message says what to do and never contains key material. */
export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyringError";
  }
}

/**
 * Loads the key file, creating it on first start with fresh random keys (mode 0600 in a 0700 directory,
 * created exclusively so two processes starting at once agree on one file). Keys a deployment supplies
 * through configuration take precedence over the file's. A key file readable by group or others is
 * refused, as ssh refuses such a private key.
 */
export async function loadOrCreateKeyring(
  file: string,
  supplied: { encryptionKey: Buffer | undefined; apiKeyPepper: Buffer | undefined } = { encryptionKey: undefined, apiKeyPepper: undefined },
): Promise<Keyring> {
  const stored = (await readKeyFile(file)) ?? (await createKeyFile(file));
  return Object.freeze({
    encryptionKey: supplied.encryptionKey ?? Buffer.from(stored.encryptionKey, "base64"),
    apiKeyPepper: supplied.apiKeyPepper ?? Buffer.from(stored.apiKeyPepper, "base64"),
    signingKeys: Object.freeze(stored.signingKeys.map((k) => Object.freeze(k))),
  });
}

async function readKeyFile(file: string): Promise<KeyFile | undefined> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new KeyringError(`key file ${file} cannot be read`);
  }
  if ((mode & 0o077) !== 0) throw new KeyringError(`key file ${file} is accessible by group or others; run: chmod 600 ${file}`);
  let parsed: Partial<KeyFile>;
  try {
    parsed = JSON.parse(await readFile(file, "utf8")) as Partial<KeyFile>;
  } catch {
    throw new KeyringError(`key file ${file} is not valid JSON`);
  }
  if (
    parsed.version !== 1 ||
    typeof parsed.encryptionKey !== "string" ||
    Buffer.from(parsed.encryptionKey, "base64").length !== 32 ||
    typeof parsed.apiKeyPepper !== "string" ||
    Buffer.from(parsed.apiKeyPepper, "base64").length !== 32 ||
    !Array.isArray(parsed.signingKeys) ||
    parsed.signingKeys.length === 0
  ) {
    throw new KeyringError(`key file ${file} is malformed`);
  }
  return parsed as KeyFile;
}

async function createKeyFile(file: string): Promise<KeyFile> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const content: KeyFile = {
    version: 1,
    encryptionKey: randomBytes(32).toString("base64"),
    apiKeyPepper: randomBytes(32).toString("base64"),
    signingKeys: [await createSigningKey()],
  };
  let handle;
  try {
    handle = await open(file, "wx", 0o600);
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      const theirs = await readKeyFile(file);
      if (theirs) return theirs;
    }
    throw new KeyringError(`key file ${file} cannot be created`);
  }
  try {
    await handle.writeFile(`${JSON.stringify(content, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return content;
}

/**
 * Adds `key` to the key file as its newest signing key and returns the file's signing keys, newest
 * first. The file is replaced atomically (a 0600 temporary file in the same directory, synced, then
 * renamed over it), so a crash leaves either the old or the new file, never a torn one. Other keys in
 * the file are kept: tokens signed with them may still need verifying.
 */
export async function appendSigningKey(file: string, key: SigningKey): Promise<readonly SigningKey[]> {
  const stored = await readKeyFile(file);
  if (!stored) throw new KeyringError(`key file ${file} does not exist`);
  const content: KeyFile = { ...stored, signingKeys: [key, ...stored.signingKeys.filter((k) => k.kid !== key.kid)] };
  const temporary = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temporary, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(content, null, 2)}\n`);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temporary).catch(() => undefined);
    throw err;
  }
  await handle.close();
  await rename(temporary, file).catch(async (err: unknown) => {
    await unlink(temporary).catch(() => undefined);
    throw err;
  });
  return content.signingKeys;
}

/** The key file as the domain's signing keys use it: read the newest keys, append a rotated one. */
export function signingKeyFile(file: string): SigningKeyFile {
  return {
    read: async () => (await loadOrCreateKeyring(file)).signingKeys,
    append: (key) => appendSigningKey(file, key),
  };
}
