import type { Config } from "../config/config.ts";
import { createAudioService, type AudioService } from "../domain/audio/audio-service.ts";
import { createConversations, type AnswerOpener, type Conversations } from "../domain/audio/conversation.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import type { Logger } from "../log/logger.ts";
import { createEspeakEngine, type EspeakEngine } from "../tts/espeak-engine.ts";
import type { Poller } from "./background.ts";

/** Speech: the engine's processes and the audio domain service. */
export interface Audio {
  readonly service: AudioService;
  readonly engine: EspeakEngine;
  /** Converse: AI answers spoken as they are written. */
  readonly conversations: Conversations;
  /** Starts the engine processes now instead of on first use (main.ts calls it once the server listens). */
  warmUp(): void;
  /** Stops the engine processes; streams still open end with UNAVAILABLE. */
  readonly pollers: readonly Poller[];
}

/**
 * Wires speech: eSpeak NG in a pool of child processes (started lazily, so a gateway that never speaks,
 * the command line and most tests never start one), the audio domain service with its per-caller
 * stream cap and audit, and Converse on it and the AI's answers (`queries.open`: budgets, retries,
 * accounting and audit as for Query), so speech comes after the AI.
 */
export function createAudio(deps: { config: Config; audit: AuditRecorder; logger: Logger; answers: AnswerOpener }): Audio {
  const engine = createEspeakEngine({
    processes: deps.config.audio.engineProcesses,
    onLog: (level, message, details) => deps.logger[level](details ?? {}, message),
  });
  const service = createAudioService({ engine, audit: deps.audit, maxStreamsPerPrincipal: deps.config.audio.maxStreamsPerPrincipal });
  return {
    service,
    engine,
    conversations: createConversations({ answers: deps.answers, speech: service, audit: deps.audit }),
    warmUp() {
      engine.warmUp().catch((error: unknown) => deps.logger.warn({ err: error }, "speech engine warm-up failed"));
    },
    pollers: [{ stop: () => engine.stop() }],
  };
}
