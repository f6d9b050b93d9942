import type { AudioEncoding, AudioPiece, EngineHealth, EngineVoice, SessionSpec, SpeechEngine, SpeechSession } from "../domain/audio/speech-engine.ts";
import { DomainError } from "../domain/errors.ts";
import { MP3_SAMPLE_RATES } from "./audio/mp3-encoder.ts";
import { OPUS_SAMPLE_RATES } from "./audio/opus-encoder.ts";
import { createAsyncQueue } from "./async-queue.ts";
import { spawnEngineProcess, type EngineInfo, type EngineProcessHandle } from "./engine-process-handle.ts";
import { STANDARD_SAMPLE_RATES, type EngineJob } from "./engine-protocol.ts";

export interface EspeakEngineOptions {
  /** Engine processes to run: each synthesises one sentence at a time, so this bounds the CPU speech takes. */
  readonly processes: number;
  readonly onLog: (level: "info" | "warn", message: string, details?: Record<string, unknown>) => void;
  readonly startTimeoutMs?: number;
  /** The engine process's entry module; tests point it at a broken one. */
  readonly entry?: URL;
}

/** The eSpeak engine plus what its owner needs: warm-up, shutdown, and a view of its processes. */
export interface EspeakEngine extends SpeechEngine {
  /** Starts the processes now (they otherwise start on first use); resolves when one is ready. */
  warmUp(): Promise<void>;
  /** Kills every process; open streams end with UNAVAILABLE. */
  stop(): Promise<void>;
  /** The live processes: pid, open streams, jobs in progress. */
  processes(): Array<{ pid: number | undefined; ready: boolean; sessions: number; pendingJobs: number }>;
}

const ENTRY = new URL("./espeak/engine-process.ts", import.meta.url);
const ENCODINGS: ReadonlySet<AudioEncoding> = new Set(["pcm_s16le", "wav", "mulaw", "mp3", "ogg_opus"]);
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * eSpeak NG behind the SpeechEngine contract, in a pool of long-lived child processes. Processes start
 * lazily (the gateway starts fast and tests that never speak never pay for them) or on warmUp(). A
 * stream is pinned to one process, where its encoder lives; a process that dies fails its streams with
 * UNAVAILABLE and is replaced at once if it had been working, or after a growing delay if it never
 * started (a broken install must not become a fork loop).
 */
export function createEspeakEngine(options: EspeakEngineOptions): EspeakEngine {
  const slots: Array<EngineProcessHandle | undefined> = new Array(Math.max(1, options.processes)).fill(undefined);
  let info: EngineInfo | undefined;
  let stopped = false;
  let failures = 0;
  let lastFailure = { at: 0, detail: "" };
  let nextJob = 1;
  let nextSession = 1;

  const spawn = (index: number): EngineProcessHandle => {
    const handle = spawnEngineProcess({
      entry: options.entry ?? ENTRY,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      onExit: ({ code, signal, wasReady }) => {
        if (slots[index] === handle) slots[index] = undefined;
        if (stopped) return;
        if (wasReady) {
          failures = 0;
          options.onLog("warn", "speech engine process exited; replacing it", { pid: handle.pid, code, signal });
          spawn(index);
        } else {
          failures += 1;
          lastFailure = { at: Date.now(), detail: `engine process exited before it was ready (code ${code}, signal ${signal})` };
          options.onLog("warn", "speech engine process failed to start", { code, signal, failures });
        }
      },
    });
    slots[index] = handle;
    handle.ready.then(
      (ready) => {
        info ??= ready;
        failures = 0;
      },
      () => undefined,
    );
    return handle;
  };

  /** The live processes, starting missing ones unless the engine is cooling down after failures. */
  const ensure = (): EngineProcessHandle[] => {
    if (stopped) throw new DomainError("unavailable", "the speech engine is shut down");
    const coolDown = Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** Math.min(failures, 10));
    const mayStart = failures === 0 || Date.now() - lastFailure.at >= coolDown;
    slots.forEach((handle, index) => {
      if (!handle && mayStart) spawn(index);
    });
    // biome-ignore lint/complexity/useOptionalChain: a type predicate returns a boolean; `h?.alive` may be undefined.
    const live = slots.filter((h): h is EngineProcessHandle => h !== undefined && h.alive);
    if (live.length === 0) throw new DomainError("unavailable", "the speech engine is unavailable; try again later");
    return live;
  };

  /** A ready process, the one with fewest open streams; waits for the first to start if none is. */
  const pick = async (): Promise<EngineProcessHandle> => {
    const live = ensure();
    const ready = live.filter((h) => h.isReady);
    if (ready.length > 0) return ready.reduce((a, b) => (b.sessions < a.sessions ? b : a));
    return Promise.any(live.map((h) => h.ready.then(() => h))).catch(() => {
      throw new DomainError("unavailable", "the speech engine failed to start");
    });
  };

  const session = (handle: EngineProcessHandle, spec: SessionSpec): SpeechSession => {
    const id = nextSession++;
    handle.sessions += 1;
    let closed = false;
    const run = (job: EngineJob, signal: AbortSignal): AsyncIterable<AudioPiece> => {
      if (closed) throw new DomainError("unavailable", "the audio stream is closed");
      if (signal.aborted) return createEndedQueue();
      const queue = handle.start(job);
      const cancel = () => handle.cancel(job.job);
      signal.addEventListener("abort", cancel, { once: true });
      return {
        async *[Symbol.asyncIterator]() {
          let finished = false;
          try {
            for await (const piece of queue) yield piece;
            finished = true;
          } finally {
            signal.removeEventListener("abort", cancel);
            // A consumer that stops early no longer wants the rest: stop the engine.
            if (!finished) cancel();
          }
        },
      };
    };
    return {
      speak: (sentence, signal) => run({ type: "speak", job: nextJob++, session: id, spec, text: sentence }, signal),
      finish: (signal) => run({ type: "finish", job: nextJob++, session: id, spec }, signal),
      close() {
        if (closed) return;
        closed = true;
        handle.sessions -= 1;
        if (handle.alive) handle.start({ type: "close", job: nextJob++, session: id });
      },
    };
  };

  return {
    get name() {
      return info?.name ?? "eSpeak NG";
    },
    encodings: ENCODINGS,
    sampleRatesFor(encoding) {
      return encoding === "mp3" ? MP3_SAMPLE_RATES : encoding === "ogg_opus" ? OPUS_SAMPLE_RATES : STANDARD_SAMPLE_RATES;
    },
    speakingRate: { min: 0.5, max: 2.5 },
    async voices(): Promise<readonly EngineVoice[]> {
      if (info) return info.voices;
      const handle = await pick();
      return (await handle.ready).voices;
    },
    async open(spec) {
      const handle = await pick();
      return session(handle, spec);
    },
    health(): EngineHealth {
      if (stopped) return { state: "down", detail: "shut down" };
      const live = slots.filter((h) => h?.alive);
      if (live.some((h) => h!.isReady)) return { state: "serving" };
      if (failures > 0) return { state: "down", detail: lastFailure.detail };
      return live.length > 0 ? { state: "starting" } : { state: "idle" };
    },
    async warmUp() {
      await pick();
    },
    async stop() {
      stopped = true;
      for (const handle of slots) handle?.kill();
      slots.fill(undefined);
    },
    processes() {
      return slots.filter((h): h is EngineProcessHandle => h !== undefined).map((h) => ({ pid: h.pid, ready: h.isReady, sessions: h.sessions, pendingJobs: h.pendingJobs }));
    },
  };
}

function createEndedQueue(): AsyncIterable<AudioPiece> {
  const queue = createAsyncQueue<AudioPiece>();
  queue.end();
  return queue;
}
