import type { JWK } from "jose";
import type { Config } from "../config/config.ts";
import type { ChainSealer } from "../domain/audit/audit-chain.ts";
import { createAuditCursorCodec } from "../domain/audit/audit-cursor.ts";
import { createAuditExport, type AuditExport } from "../domain/audit/audit-export.ts";
import { createAuditLog, type AuditLog } from "../domain/audit/audit-log.ts";
import type { AuditLogStore } from "../domain/audit/audit-log-store.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createStatementSigner } from "../domain/audit/audit-signatures.ts";
import { createAuditWatch, type AuditWatch } from "../domain/audit/audit-watch.ts";
import { checkPolicy, createAutoResponder, type ResponseActions } from "../domain/audit/auto-response.ts";
import { createRetentionSweeper } from "../domain/audit/retention.ts";
import { createSuspiciousActivity } from "../domain/audit/suspicious-activity.ts";
import { createSuspiciousActivityService, type SuspiciousActivityService } from "../domain/audit/suspicious-activity-service.ts";
import type { SigningKeySet } from "../domain/tokens/signing-keys.ts";
import type { Logger } from "../log/logger.ts";
import { createAuditSealsStore } from "../store/audit-seals-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createSigningKeysStore } from "../store/signing-keys-store.ts";
import type { PeriodicTask, Poller } from "./background.ts";
import type { GatewaySettings } from "./gateway-settings.ts";

/** The audit service of one gateway: reading, verifying, exporting, the live tail, findings and retention. */
export interface Audit {
  readonly log: AuditLog;
  readonly exports: AuditExport;
  readonly watch: AuditWatch;
  readonly suspicious: SuspiciousActivityService;
  /** Runs one retention sweep now; resolves with the number of events deleted. */
  sweep(): Promise<number>;
  /** Head signing, the retention sweep and (with rules configured) the automatic response. */
  readonly tasks: readonly PeriodicTask[];
  /** The live tail's poller (it starts on demand, and is stopped with the gateway). */
  readonly pollers: readonly Poller[];
}

const RETENTION_SWEEP_MS = 10 * 60_000;

/**
 * Wires the audit service on the audit store, with the response actions the identity and API-key
 * services provide. Throws at start when the response policy names an action this gateway cannot perform.
 */
export function createAudit(deps: {
  store: Store;
  auditStore: AuditLogStore;
  sealer: ChainSealer;
  cursorKey: Uint8Array;
  audit: AuditRecorder;
  signingKeys: SigningKeySet;
  actions: ResponseActions;
  /** The ids of a user's API keys (their events are listed to the user too). */
  apiKeyIdsOf: (userId: string) => Promise<readonly string[]>;
  config: Config;
  settings: GatewaySettings;
  logger: Logger;
}): Audit {
  const { config, logger, auditStore, audit } = deps;
  const policy = { rules: deps.settings.responseRules, minSeverity: config.audit.autoResponse.minSeverity, lockDurationMs: config.audit.autoResponse.lockDurationMs };
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
    apiKeyIdsOf: deps.apiKeyIdsOf,
  });
  const watch = createAuditWatch({ store: auditStore, heartbeatMs: config.audit.watchHeartbeatMs, onError: (err) => logger.warn({ err }, "audit watch poll failed") });
  const suspicious = createSuspiciousActivityService({
    analyse: createSuspiciousActivity({ store: auditStore, thresholds: config.audit.thresholds }),
    responder: createAutoResponder({ policy, actions: deps.actions, audit }),
    responds: policy.rules.length > 0,
    audit,
  });
  const sweep = createRetentionSweeper({ store: auditStore, seals, log, audit, retentionMs: config.audit.retentionMs });
  return {
    log,
    exports: createAuditExport({ log, store: auditStore }),
    watch,
    suspicious,
    sweep,
    tasks: [
      { name: "audit head signing", everyMs: config.audit.headSignIntervalMs, run: () => log.signHead() },
      { name: "audit retention sweep", everyMs: RETENTION_SWEEP_MS, run: sweep },
      ...(policy.rules.length > 0 ? [{ name: "audit automatic response", everyMs: config.audit.autoResponse.intervalMs, run: () => suspicious.respond() }] : []),
    ],
    pollers: [watch],
  };
}
