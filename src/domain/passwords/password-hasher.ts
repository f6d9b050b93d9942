import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { DomainError } from "../errors.ts";
import { createArgon2Pool, type Argon2Job } from "./argon2-pool.ts";

/** Argon2id cost parameters. */
export interface PasswordHashParams {
  /** Memory per hash, in KiB. */
  memoryKiB: number;
  /** Passes over that memory. */
  timeCost: number;
  /** Lanes of the argon2 computation. */
  parallelism: number;
}

/**
 * The OWASP minimum for argon2id (m=19 MiB, t=2, p=1): about 20–40 ms per hash on a server core,
 * slow enough for offline guessing and cheap enough that logins don't queue.
 */
export const DEFAULT_PASSWORD_HASH_PARAMS: PasswordHashParams = Object.freeze({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });

/**
 * Hashes and verifies passwords with argon2id (Node's built-in implementation) on low-priority worker
 * threads, never on the event loop.
 *
 * Passwords are NFKC-normalised before hashing and verifying, so the same password typed on keyboards
 * or input methods that produce different Unicode forms still matches.
 */
export interface PasswordHasher {
  /** An argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a fresh random salt. */
  hash(password: string): Promise<string>;
  /**
   * Constant-time verify; `needsRehash` is true when the password matched and the stored hash is weaker
   * than the configured parameters (lower m, t or p, or not argon2id v19), so the caller can re-hash it.
   * A malformed or absurd stored hash gives `ok: false`: it never throws to the caller.
   */
  verify(hash: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }>;
  /**
   * Spends the same time as a real verify against a hash with the configured parameters, for unknown
   * users: login must not reveal by its timing whether a username exists.
   */
  verifyDummy(password: string): Promise<void>;
}

// A stored hash claiming more than this is corrupt or hostile: verifying it would exhaust memory or CPU.
const MAX_MEMORY_KIB = 1024 * 1024;
const MAX_TIME_COST = 64;
const MAX_PARALLELISM = 64;
// Longer passwords cannot have been set (the policy allows 1024 code points, ≤ 4 KiB of UTF-8).
const MAX_PASSWORD_BYTES = 4096;
const ARGON2_VERSION = 0x13;

interface ParsedHash {
  id: string;
  version: number;
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
  salt: Buffer;
  tag: Buffer;
}

const SALT_BYTES = 16;
const TAG_BYTES = 32;

/**
 * Creates a hasher with `params` (default {@link DEFAULT_PASSWORD_HASH_PARAMS}); throws on invalid params.
 * Hashes run on `threads` low-priority threads (default: one fewer than the cores, at least one — the
 * event loop always has a core, and the threads yield to it and to the database when they want one);
 * up to 1,000 more wait their turn.
 */
export function createPasswordHasher(params: PasswordHashParams = DEFAULT_PASSWORD_HASH_PARAMS, options: { threads?: number } = {}): PasswordHasher {
  const { memoryKiB, timeCost, parallelism } = params;
  if (
    ![memoryKiB, timeCost, parallelism].every(Number.isSafeInteger) ||
    memoryKiB < 8 * parallelism ||
    memoryKiB > MAX_MEMORY_KIB ||
    timeCost < 1 ||
    timeCost > MAX_TIME_COST ||
    parallelism < 1 ||
    parallelism > MAX_PARALLELISM
  ) {
    throw new RangeError("createPasswordHasher: invalid argon2id parameters");
  }
  const pool = createArgon2Pool({ threads: options.threads ?? Math.max(1, availableParallelism() - 1), maxQueued: 1_000 });

  const hash = async (message: Uint8Array): Promise<string> => {
    const nonce = randomBytes(SALT_BYTES);
    const tag = await pool.tag({ algorithm: "argon2id", message, nonce, memoryKiB, passes: timeCost, parallelism, tagLength: TAG_BYTES });
    return formatHash({ id: "argon2id", version: ARGON2_VERSION, memoryKiB, timeCost, parallelism }, nonce, tag);
  };

  let dummyHash: Promise<string> | undefined;
  const getDummyHash = () => {
    dummyHash ??= hash(randomBytes(32)).catch((err: unknown) => {
      dummyHash = undefined;
      throw err;
    });
    return dummyHash;
  };

  async function verify(stored: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
    const parsed = parseHash(stored);
    if (parsed === undefined) return { ok: false, needsRehash: false };
    const input = Buffer.from(password.normalize("NFKC"), "utf8");
    // An over-long password still costs a full verify (no timing shortcut), and never matches.
    const tooLong = input.byteLength > MAX_PASSWORD_BYTES;
    const job: Argon2Job & { expected: Uint8Array } = {
      algorithm: parsed.id as Argon2Job["algorithm"],
      message: tooLong ? Buffer.alloc(0) : input,
      nonce: parsed.salt,
      memoryKiB: parsed.memoryKiB,
      passes: parsed.timeCost,
      parallelism: parsed.parallelism,
      tagLength: parsed.tag.length,
      expected: parsed.tag,
    };
    try {
      const ok = (await pool.matches(job)) && !tooLong;
      const weaker = parsed.id !== "argon2id" || parsed.version !== ARGON2_VERSION || parsed.memoryKiB < memoryKiB || parsed.timeCost < timeCost || parsed.parallelism < parallelism;
      return { ok, needsRehash: ok && weaker };
    } catch (err) {
      if (err instanceof DomainError) throw err; // busy: not a wrong password
      return { ok: false, needsRehash: false };
    }
  }

  return {
    hash: (password) => hash(Buffer.from(password.normalize("NFKC"), "utf8")),
    verify,
    async verifyDummy(password) {
      await verify(await getDummyHash(), password);
    },
  };
}

/** The PHC string form (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, unpadded standard base64), as the reference implementation writes it. */
function formatHash(p: Omit<ParsedHash, "salt" | "tag">, salt: Buffer, tag: Buffer): string {
  const b64 = (bytes: Buffer) => bytes.toString("base64").replace(/=+$/, "");
  return `$${p.id}$v=${p.version}$m=${p.memoryKiB},t=${p.timeCost},p=${p.parallelism}$${b64(salt)}$${b64(tag)}`;
}

/** The parameters of a PHC argon2 string, or undefined when it is not one we are willing to verify. */
function parseHash(hash: unknown): ParsedHash | undefined {
  if (typeof hash !== "string" || hash.length > 512) return undefined;
  // The library writes the parameters as m,p,t; other writers use m,t,p. Accept any order, each once.
  const match = /^\$(argon2id|argon2i|argon2d)\$v=(\d{1,3})\$([a-z]=\d{1,10}(?:,[a-z]=\d{1,10}){2})\$([A-Za-z0-9+/]{11,86})\$([A-Za-z0-9+/]{6,86})$/.exec(hash);
  if (!match) return undefined;
  const [, id = "", version, list = "", salt = "", tag = ""] = match;
  const values = new Map(list.split(",").map((pair) => [pair[0], Number(pair.slice(2))] as const));
  const [m, t, p] = [values.get("m"), values.get("t"), values.get("p")];
  if (values.size !== 3 || m === undefined || t === undefined || p === undefined) return undefined;
  const parsed = { id, version: Number(version), memoryKiB: m, timeCost: t, parallelism: p, salt: Buffer.from(salt, "base64"), tag: Buffer.from(tag, "base64") };
  const sane =
    parsed.memoryKiB >= 8 * parsed.parallelism &&
    parsed.memoryKiB <= MAX_MEMORY_KIB &&
    parsed.timeCost >= 1 &&
    parsed.timeCost <= MAX_TIME_COST &&
    parsed.parallelism >= 1 &&
    parsed.parallelism <= MAX_PARALLELISM &&
    parsed.salt.length >= 8 &&
    parsed.tag.length >= 4;
  return sane ? parsed : undefined;
}
