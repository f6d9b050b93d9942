import type { JWK } from "jose";
import { auditActorOf } from "../domain/audit/audit-actor.ts";
import type { Config } from "../config/config.ts";
import type { ChainSealer } from "../domain/audit/audit-chain.ts";
import { createAuditCursorCodec } from "../domain/audit/audit-cursor.ts";
import { createAuditLog, type AuditLog } from "../domain/audit/audit-log.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createStatementSigner } from "../domain/audit/audit-signatures.ts";
import { createAuditWatch } from "../domain/audit/audit-watch.ts";
import { checkPolicy, createAutoResponder, type ResponseActions, type SuspiciousActivityService } from "../domain/audit/auto-response.ts";
import { createRetentionSweeper } from "../domain/audit/retention.ts";
import { createSuspiciousActivity } from "../domain/audit/suspicious-activity.ts";
import type { SigningKeySet } from "../domain/tokens/signing-keys.ts";
import { createAuditHandlers } from "../handlers/audit-service.ts";
import type { Logger } from "../log/logger.ts";
import type { MongoAuditStore } from "../store/audit-store.ts";
import { createAuditSealsStore } from "../store/audit-seals-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createSigningKeysStore } from "../store/signing-keys-store.ts";

/** The audit service of one process: handlers plus the background work it owns. */
export interface AuditCapability {
  readonly handlers: ReturnType<typeof createAuditHandlers>;
  readonly log: AuditLog;
  /** Runs one retention sweep now; resolves with the number of events deleted. */
  sweep(): Promise<number>;
  /** Evaluates the automatic response policy now; resolves with the number of actions taken. */
  respond(): Promise<number>;
  stop(): void;
}

const RETENTION_SWEEP_MS = 10 * 60_000;
const RESPONSE_WINDOW_MS = 86_400_000;

/**
 * Wires the audit service: reading and verifying the chain, head signing at intervals, the live tail,
 * suspicious activity with the automatic response policy, and the retention sweeper. Throws at start
 * when the response policy names an action this gateway cannot perform.
 */
export function createAuditCapability(deps: {
  store: Store;
  auditStore: MongoAuditStore;
  sealer: ChainSealer;
  cursorKey: Uint8Array;
  audit: AuditRecorder;
  signingKeys: SigningKeySet;
  actions: ResponseActions;
  /** The ids of a user's API keys (their events are listed to the user too). */
  apiKeyIdsOf?: (userId: string) => Promise<readonly string[]>;
  config: Config;
  logger: Logger;
}): AuditCapability {
  const { config, logger, auditStore, audit } = deps;
  const policy = { rules: config.audit.autoResponse.rules, minSeverity: config.audit.autoResponse.minSeverity, lockDurationMs: config.audit.autoResponse.lockDurationMs };
  checkPolicy(policy, deps.actions);

  const seals = createAuditSealsStore(deps.store);
  const signingKeysStore = createSigningKeysStore(deps.store);
  const log = createAuditLog({
    store: auditStore,
    seals,
    sealer: deps.sealer,
    cursors: createAuditCursorCodec(deps.cursorKey),
    signer: createStatementSigner(() => deps.signingKeys.current()),
    publishedKeys: async () => (await signingKeysStore.list()).map((key): JWK => ({ ...key.publicJwk, kid: key.kid })),
    audit,
    ...(deps.apiKeyIdsOf ? { apiKeyIdsOf: deps.apiKeyIdsOf } : {}),
  });
  const watch = createAuditWatch({ store: auditStore, heartbeatMs: config.audit.watchHeartbeatMs, onError: (err) => logger.warn({ err }, "audit watch poll failed") });
  const analyse = createSuspiciousActivity({ store: auditStore, thresholds: config.audit.thresholds });
  const responder = createAutoResponder({ policy, actions: deps.actions, audit });
  const respond = async () => (policy.rules.length === 0 ? 0 : responder((await analyse({ start: new Date(Date.now() - RESPONSE_WINDOW_MS) })).findings));
  const suspicious: SuspiciousActivityService = {
    async analyse(reader, window) {
      const result = await analyse(window);
      audit.record({
        type: "audit.suspicious_query",
        outcome: "success",
        actor: auditActorOf(reader.principal),
        ip: reader.client.ip,
        userAgent: reader.client.userAgent,
        requestId: reader.requestId,
        metadata: { start_time: result.start.toISOString(), end_time: result.end.toISOString(), findings: result.findings.length },
      });
      if (policy.rules.length > 0) await responder(result.findings);
      return result;
    },
  };
  const sweep = createRetentionSweeper({ store: auditStore, seals, log, audit, retentionMs: config.audit.retentionMs });

  const every = (ms: number, work: () => Promise<unknown>, what: string) => {
    const timer = setInterval(() => {
      work().catch((err: unknown) => logger.warn({ err }, `${what} failed`));
    }, ms);
    timer.unref();
    return timer;
  };
  const timers = [
    every(config.audit.headSignIntervalMs, () => log.signHead(), "audit head signing"),
    every(RETENTION_SWEEP_MS, sweep, "audit retention sweep"),
    ...(policy.rules.length > 0 ? [every(config.audit.autoResponse.intervalMs, respond, "audit automatic response")] : []),
  ];

  return {
    handlers: createAuditHandlers({ log, store: auditStore, watch, suspicious }),
    log,
    sweep,
    respond,
    stop() {
      for (const timer of timers) clearInterval(timer);
      watch.stop();
    },
  };
}
