import { Worker } from "node:worker_threads";
import type { StrengthResult, StrengthTask } from "./password-strength-worker.ts";

/** Fewest code points a password may have (NIST SP 800-63B asks for at least 8; we want passphrases). */
export const MIN_PASSWORD_LENGTH = 12;
/** Most code points: enough for any passphrase, small enough that hashing and checking stay cheap. */
export const MAX_PASSWORD_LENGTH = 1024;
/** zxcvbn score required: 3 is "safely unguessable: moderate protection from offline slow-hash scenario". */
const MIN_SCORE = 3;

export type PasswordStrength = { ok: true } | { ok: false; reason: string };

/**
 * The one password-strength thread (password-strength-worker.ts), started on first use (loading the
 * dictionaries takes ~200 ms, which a process that never checks a password should not pay) and kept,
 * holding the process open only while a check is pending. Checks are answered in order.
 */
let thread: { worker: Worker; pending: Map<number, { resolve: (r: StrengthResult) => void; reject: (e: Error) => void }> } | undefined;
let nextId = 1;

function strengthThread(): NonNullable<typeof thread> {
  if (thread) return thread;
  const worker = new Worker(new URL("./password-strength-worker.ts", import.meta.url));
  const current = { worker, pending: new Map<number, { resolve: (r: StrengthResult) => void; reject: (e: Error) => void }>() };
  worker.unref();
  worker.on("message", (result: StrengthResult) => {
    current.pending.get(result.id)?.resolve(result);
    current.pending.delete(result.id);
    if (current.pending.size === 0) worker.unref();
  });
  const fail = (error: Error) => {
    if (thread === current) thread = undefined; // the next check starts a new thread
    for (const waiting of current.pending.values()) waiting.reject(error);
    current.pending.clear();
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`password-strength thread exited with code ${code}`)));
  thread = current;
  return current;
}

function judge(password: string, userInputs: readonly string[]): Promise<StrengthResult> {
  const { worker, pending } = strengthThread();
  const task: StrengthTask = { id: nextId++, password, userInputs };
  return new Promise((resolve, reject) => {
    pending.set(task.id, { resolve, reject });
    worker.ref(); // a pending check keeps the process alive (the CLI awaits one with nothing else running)
    worker.postMessage(task);
  });
}

/**
 * Whether `password` may be set: 12 to 1024 code points and a zxcvbn score of at least 3 against its
 * common-password and English dictionaries, keyboard patterns, and `userInputs` (the username and email,
 * so that a password built from them is refused).
 *
 * A refusal's `reason` is one sentence for the person choosing the password, using zxcvbn's warning and
 * suggestion when it has them. It never contains the password.
 */
export async function checkPasswordStrength(password: string, userInputs: readonly string[]): Promise<PasswordStrength> {
  const length = codePointLength(password);
  if (length < MIN_PASSWORD_LENGTH) return { ok: false, reason: `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.` };
  if (length > MAX_PASSWORD_LENGTH) return { ok: false, reason: `The password must be at most ${MAX_PASSWORD_LENGTH} characters long.` };

  const result = await judge(password, expandUserInputs(userInputs));
  if ("error" in result) throw new Error(`password-strength check failed (${result.error})`);
  if (result.score >= MIN_SCORE) return { ok: true };

  const warning = result.warning?.trim();
  const suggestion = result.suggestion?.trim();
  const parts = ["The password is too easy to guess.", warning, suggestion].filter((part): part is string => Boolean(part));
  const reason = parts.join(" ");
  // The feedback is fixed text, but a password could in principle coincide with it: never echo one.
  return { ok: false, reason: reason.includes(password) ? "The password is too easy to guess." : reason };
}

function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/** The inputs and their parts: "alice.smith@example.com" also yields "alice.smith", "alicesmith", "alice", "smith", "example". */
function expandUserInputs(inputs: readonly string[]): string[] {
  const words = new Set<string>();
  for (const input of inputs) {
    const lower = input.trim().toLowerCase().slice(0, 256);
    if (lower === "") continue;
    words.add(lower);
    const [local] = lower.split("@");
    if (local) words.add(local);
    // "zephyr.quill" is also typed as "zephyrquill".
    const joined = (local ?? "").replace(/[^\p{L}\p{N}]+/gu, "");
    if (joined.length >= 3) words.add(joined);
    for (const part of lower.split(/[^\p{L}\p{N}]+/u)) if (part.length >= 3) words.add(part);
  }
  return [...words];
}
