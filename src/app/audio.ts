import type { Config } from "../config/config.ts";
import { createAudioService, type AudioService } from "../domain/audio/audio-service.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import type { Logger } from "../log/logger.ts";
import { createEspeakEngine, type EspeakEngine } from "../tts/espeak-engine.ts";
import type { Poller } from "./background.ts";

/** Speech: the engine's processes and the audio domain service. */
export interface Audio {
  readonly service: AudioService;
  readonly engine: EspeakEngine;
  /** Starts the engine processes now instead of on first use (main.ts calls it once the server listens). */
  warmUp(): void;
  /** Stops the engine processes; streams still open end with UNAVAILABLE. */
  readonly pollers: readonly Poller[];
}

/**
 * Wires speech: eSpeak NG in a pool of child processes (started lazily, so a gateway that never speaks,
 * the command line and most tests never start one), and the audio domain service with its per-caller
 * stream cap and audit.
 */
export function createAudio(deps: { config: Config; audit: AuditRecorder; logger: Logger }): Audio {
  const engine = createEspeakEngine({
    processes: deps.config.audio.engineProcesses,
    onLog: (level, message, details) => deps.logger[level](details ?? {}, message),
  });
  return {
    service: createAudioService({ engine, audit: deps.audit, maxStreamsPerPrincipal: deps.config.audio.maxStreamsPerPrincipal }),
    engine,
    warmUp() {
      engine.warmUp().catch((error: unknown) => deps.logger.warn({ err: error }, "speech engine warm-up failed"));
    },
    pollers: [{ stop: () => engine.stop() }],
  };
}
