import { Worker } from "node:worker_threads";
import { DomainError } from "../errors.ts";
import type { Argon2Result, Argon2Task } from "./argon2-worker.ts";

export type Argon2Job = Omit<Argon2Task, "id">;

/**
 * A few low-priority threads that compute argon2 (see argon2-worker.ts), fed from one bounded queue.
 * Threads start on first use and keep the process alive only while they have work. A thread that dies
 * fails its job and is replaced. Past `maxQueued` waiting jobs, calls are refused with RESOURCE_EXHAUSTED
 * instead of letting work pile up without bound.
 */
export function createArgon2Pool(options: { threads: number; maxQueued: number }) {
  interface Slot {
    worker: Worker;
    job?: { id: number; resolve: (result: Argon2Result) => void; reject: (err: Error) => void };
  }
  const slots: Slot[] = [];
  const queue: Array<{ task: Argon2Task; resolve: (result: Argon2Result) => void; reject: (err: Error) => void }> = [];
  let nextId = 1;

  const startSlot = (): Slot => {
    const worker = new Worker(new URL("./argon2-worker.ts", import.meta.url));
    const slot: Slot = { worker };
    worker.unref();
    worker.on("message", (result: Argon2Result) => {
      const job = slot.job;
      slot.job = undefined;
      worker.unref();
      if (job && job.id === result.id) job.resolve(result);
      dispatch();
    });
    const fail = (err: Error) => {
      const job = slot.job;
      slot.job = undefined;
      const index = slots.indexOf(slot);
      if (index !== -1) slots.splice(index, 1);
      job?.reject(err);
      dispatch();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`argon2 thread exited with code ${code}`)));
    slots.push(slot);
    return slot;
  };

  function dispatch(): void {
    while (queue.length > 0) {
      const slot = slots.find((s) => s.job === undefined) ?? (slots.length < options.threads ? startSlot() : undefined);
      if (!slot) return;
      const next = queue.shift()!;
      slot.job = { id: next.task.id, resolve: next.resolve, reject: next.reject };
      slot.worker.ref(); // a pending hash keeps the process alive (the CLI awaits one with nothing else running)
      slot.worker.postMessage(next.task);
    }
  }

  const run = (job: Argon2Job): Promise<Argon2Result> => {
    if (queue.length >= options.maxQueued) {
      return Promise.reject(new DomainError("resource_exhausted", "the server is busy; retry shortly", { reason: "rate_limited", retryAfterMs: 1_000 }));
    }
    return new Promise((resolve, reject) => {
      queue.push({ task: { ...job, id: nextId++ }, resolve, reject });
      dispatch();
    });
  };

  return {
    /** The argon2 tag of `job`. */
    async tag(job: Argon2Job): Promise<Buffer> {
      const result = await run(job);
      if ("error" in result) throw new Error(`argon2 failed (${result.error})`);
      if (!("tag" in result)) throw new Error("argon2 thread answered a hash with a verdict");
      return Buffer.from(result.tag);
    },
    /** Whether `job` produces `expected`, compared in constant time in the thread. */
    async matches(job: Argon2Job & { expected: Uint8Array }): Promise<boolean> {
      const result = await run(job);
      if ("error" in result) throw new Error(`argon2 failed (${result.error})`);
      if (!("matches" in result)) throw new Error("argon2 thread answered a verify with a tag");
      return result.matches;
    },
    /** Stops every thread (tests and graceful shutdown); queued jobs are refused. */
    async close(): Promise<void> {
      for (const waiting of queue.splice(0)) waiting.reject(new DomainError("unavailable", "shutting down"));
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
