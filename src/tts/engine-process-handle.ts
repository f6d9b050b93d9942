import { fork, type ChildProcess } from "node:child_process";
import type { AudioPiece, EngineVoice } from "../domain/audio/speech-engine.ts";
import { DomainError } from "../domain/errors.ts";
import { createAsyncQueue, type AsyncQueue } from "./async-queue.ts";
import type { EngineJob, FromEngine } from "./engine-protocol.ts";

/** What an engine process says about itself once it is ready. */
export interface EngineInfo {
  readonly name: string;
  readonly voices: readonly EngineVoice[];
  readonly nativeRateHz: number;
}

/** The gateway's side of one engine process: its jobs, its sessions, its life. */
export interface EngineProcessHandle {
  readonly pid: number | undefined;
  /** Resolves when the engine has loaded; rejects if the process dies or stalls first. */
  readonly ready: Promise<EngineInfo>;
  readonly isReady: boolean;
  readonly alive: boolean;
  /** Streams open on this process (their encoder state lives here). */
  sessions: number;
  /** Jobs sent and not yet done. */
  readonly pendingJobs: number;
  /** Sends a job; its audio arrives on the returned queue, which ends when the job is done. */
  start(job: EngineJob): AsyncQueue<AudioPiece>;
  cancel(job: number): void;
  kill(): void;
}

export const ENGINE_STOPPED = "the speech engine stopped unexpectedly; try again";

/**
 * Starts one engine process. The child gets an empty environment (it needs none, and the gateway's
 * secrets stay in the gateway) and only an IPC pipe: no network, no files of ours.
 */
export function spawnEngineProcess(options: { entry: URL; startTimeoutMs: number; onExit: (info: { code: number | null; signal: string | null; wasReady: boolean }) => void }): EngineProcessHandle {
  const child: ChildProcess = fork(options.entry, [], {
    serialization: "advanced",
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    env: {},
    execArgv: ["--max-old-space-size=512"],
  });
  const jobs = new Map<number, AsyncQueue<AudioPiece>>();
  let isReady = false;
  let alive = true;
  let resolveReady: (info: EngineInfo) => void = () => undefined;
  let rejectReady: (error: unknown) => void = () => undefined;
  const ready = new Promise<EngineInfo>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined); // observed by callers; never an unhandled rejection
  const stall = setTimeout(() => {
    rejectReady(new DomainError("unavailable", "the speech engine did not start in time"));
    child.kill("SIGKILL");
  }, options.startTimeoutMs);
  stall.unref();

  child.on("message", (message: FromEngine) => {
    switch (message.type) {
      case "ready":
        isReady = true;
        clearTimeout(stall);
        resolveReady({ name: message.name, voices: message.voices, nativeRateHz: message.nativeRateHz });
        return;
      case "audio":
        jobs.get(message.job)?.push({ data: message.data, samples: message.samples });
        return;
      case "done": {
        const queue = jobs.get(message.job);
        jobs.delete(message.job);
        if (message.outcome === "failed") queue?.fail(new Error(`speech engine job failed: ${message.detail ?? "unknown"}`));
        else queue?.end();
        return;
      }
    }
  });
  child.on("error", () => child.kill("SIGKILL"));
  child.on("exit", (code, signal) => {
    alive = false;
    clearTimeout(stall);
    rejectReady(new DomainError("unavailable", "the speech engine failed to start"));
    for (const queue of jobs.values()) queue.fail(new DomainError("unavailable", ENGINE_STOPPED));
    jobs.clear();
    options.onExit({ code, signal, wasReady: isReady });
  });

  return {
    get pid() {
      return child.pid;
    },
    ready,
    get isReady() {
      return isReady;
    },
    get alive() {
      return alive;
    },
    sessions: 0,
    get pendingJobs() {
      return jobs.size;
    },
    start(job) {
      const queue = createAsyncQueue<AudioPiece>();
      if (!alive || !child.connected) {
        queue.fail(new DomainError("unavailable", ENGINE_STOPPED));
        return queue;
      }
      jobs.set(job.job, queue);
      child.send(job);
      return queue;
    },
    cancel(job) {
      if (jobs.has(job) && child.connected) child.send({ type: "cancel", job });
    },
    kill() {
      child.kill("SIGKILL");
    },
  };
}
