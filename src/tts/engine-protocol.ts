import type { EngineVoice, SessionSpec } from "../domain/audio/speech-engine.ts";

/**
 * The messages between the gateway and an engine process, over the process's IPC pipe (Node's advanced
 * serialisation, so audio travels as bytes, not JSON). Job ids are unique per process; a process runs
 * one job at a time and answers each speak/finish with audio messages and then exactly one `done`.
 */
export type ToEngine =
  | { readonly type: "speak"; readonly job: number; readonly session: number; readonly spec: SessionSpec; readonly text: string }
  | { readonly type: "finish"; readonly job: number; readonly session: number; readonly spec: SessionSpec }
  | { readonly type: "close"; readonly job: number; readonly session: number }
  | { readonly type: "cancel"; readonly job: number };

export type FromEngine =
  | { readonly type: "ready"; readonly name: string; readonly voices: readonly EngineVoice[]; readonly nativeRateHz: number }
  | { readonly type: "audio"; readonly job: number; readonly data: Uint8Array; readonly samples: number }
  | { readonly type: "done"; readonly job: number; readonly outcome: "complete" | "aborted" | "failed"; readonly detail?: string };

/** The jobs the process's scheduler hands its synthesis thread, one at a time. */
export type EngineJob = Exclude<ToEngine, { type: "cancel" }>;

/** Every sample rate a stream may ask for: the standard rates from telephony to studio. */
export const STANDARD_SAMPLE_RATES: readonly number[] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
