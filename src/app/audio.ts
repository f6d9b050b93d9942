import type { Config } from "../config/config.ts";
import { createAudioService, type AudioService } from "../domain/audio/audio-service.ts";
import { createConversations, type AnswerOpener } from "../domain/audio/conversation.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createAudioStreamHandlers } from "../handlers/audio-stream-service.ts";
import type { Logger } from "../log/logger.ts";
import { createEspeakEngine, type EspeakEngine } from "../tts/espeak-engine.ts";

/** The audio capability of one gateway process: the speech engine's processes and the service. */
export interface AudioCapability {
  readonly service: AudioService;
  readonly engine: EspeakEngine;
  /** Starts the engine processes now instead of on first use (main.ts calls it once the server listens). */
  warmUp(): void;
  /** Stops the engine processes; streams still open end with UNAVAILABLE. */
  stop(): Promise<void>;
}

/**
 * Wires speech: eSpeak NG in a pool of child processes (started lazily, so a gateway that never speaks,
 * the command line and most tests never start one), and the audio domain service with its per-caller
 * stream cap and audit. It comes before the AI capability, whose GetStatus reports the engine; the
 * handlers come after it (createAudioHandlers), as Converse asks the AI for its answers.
 */
export function createAudioCapability(deps: { config: Config; audit: AuditRecorder; logger: Logger }): AudioCapability {
  const engine = createEspeakEngine({
    processes: deps.config.audio.engineProcesses,
    onLog: (level, message, details) => deps.logger[level](details ?? {}, message),
  });
  const service = createAudioService({ engine, audit: deps.audit, maxStreamsPerPrincipal: deps.config.audio.maxStreamsPerPrincipal });
  return {
    service,
    engine,
    warmUp() {
      engine.warmUp().catch((error: unknown) => deps.logger.warn({ err: error }, "speech engine warm-up failed"));
    },
    stop: () => engine.stop(),
  };
}

/** AudioStreamService: Synthesize and ListVoices on the audio service; Converse on it and the AI's answers (`queries.open`). */
export function createAudioHandlers(deps: { audio: AudioCapability; answers: AnswerOpener; audit: AuditRecorder }): ReturnType<typeof createAudioStreamHandlers> {
  return createAudioStreamHandlers(deps.audio.service, createConversations({ answers: deps.answers, speech: deps.audio.service, audit: deps.audit }));
}
