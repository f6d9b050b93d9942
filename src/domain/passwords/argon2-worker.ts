// A password-hashing thread: computes argon2 with Node's built-in crypto.argon2Sync, at the lowest CPU
// priority. Linux applies a nice value per thread, so this thread yields to the event loop — and to the
// database — whenever they want a core: a login storm slows logins, not every other call.
import { argon2Sync, timingSafeEqual } from "node:crypto";
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";

export interface Argon2Task {
  readonly id: number;
  readonly algorithm: "argon2id" | "argon2i" | "argon2d";
  readonly message: Uint8Array;
  readonly nonce: Uint8Array;
  readonly memoryKiB: number;
  readonly passes: number;
  readonly parallelism: number;
  readonly tagLength: number;
  /** For a verify: the stored tag; the answer is then whether it matches, never the computed tag. */
  readonly expected?: Uint8Array;
}

export type Argon2Result = { readonly id: number; readonly tag: Uint8Array } | { readonly id: number; readonly matches: boolean } | { readonly id: number; readonly error: string };

try {
  setPriority(19);
} catch {
  // Not permitted here (some containers): hashing still runs off the event loop, just not deprioritised.
}

parentPort?.on("message", (task: Argon2Task) => {
  let result: Argon2Result;
  try {
    const tag = argon2Sync(task.algorithm, {
      message: task.message,
      nonce: task.nonce,
      memory: task.memoryKiB,
      passes: task.passes,
      parallelism: task.parallelism,
      tagLength: task.tagLength,
    });
    result = task.expected ? { id: task.id, matches: tag.length === task.expected.length && timingSafeEqual(tag, task.expected) } : { id: task.id, tag };
  } catch (err) {
    result = { id: task.id, error: err instanceof Error ? err.name : "Error" };
  }
  parentPort!.postMessage(result);
});
