// A password-hashing thread: computes argon2 with Node's built-in crypto.argon2Sync, at the lowest CPU
// priority. Linux applies a nice value per thread, so this thread yields to the event loop — and to the
// database — whenever they want a core: a login storm slows logins, not every other call.
import { execFileSync } from "node:child_process";
import { argon2Sync, timingSafeEqual } from "node:crypto";
import { readlinkSync } from "node:fs";
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

// Better still on Linux: SCHED_IDLE. The scheduler then counts a core that runs only hashing as idle, so
// a woken event loop or database thread is placed there and runs at once, instead of queueing behind
// another busy thread; nice 19 alone still leaves them waiting. Node has no binding for
// sched_setscheduler, so util-linux's chrt (present on every Debian and most Linux systems) sets it for
// this thread's id. Without chrt the thread stays at nice 19.
if (process.platform === "linux") {
  try {
    const threadId = readlinkSync("/proc/thread-self").split("/").pop()!;
    execFileSync("chrt", ["--idle", "--pid", "0", threadId], { stdio: "ignore", timeout: 5_000 });
  } catch {
    // no chrt, or not permitted: nice 19 stands
  }
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
