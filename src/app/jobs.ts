import { hkdfSync } from "node:crypto";
import type { Config } from "../config/config.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createJobEventTail } from "../domain/jobs/job-event-tail.ts";
import { createJobExport, type JobExport } from "../domain/jobs/job-export.ts";
import { createJobPageTokens } from "../domain/jobs/job-page-token.ts";
import { createJobRetention } from "../domain/jobs/job-retention.ts";
import { createJobService, type JobService } from "../domain/jobs/job-service.ts";
import { createJobSubmission, type JobSubmission } from "../domain/jobs/job-submission.ts";
import { createJobWorker } from "../domain/jobs/job-worker.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import { createJobsStore } from "../store/jobs-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createTempFileSpool } from "../store/temp-file-spool.ts";
import type { Ai } from "./ai.ts";
import type { PeriodicTask, Poller } from "./background.ts";

const RETENTION_SWEEP_MS = 3_600_000;

/** AI jobs: what the handlers call, and the background work (workers, the event tail, retention). */
export interface Jobs {
  readonly submission: JobSubmission;
  readonly service: JobService;
  readonly exporter: JobExport;
  /** The workers (started with the gateway; stopping releases what still runs), the event tail, change streams. */
  readonly pollers: readonly Poller[];
  /** The hourly retention sweep. */
  readonly tasks: readonly PeriodicTask[];
  /** One retention sweep as of `at` (default now); resolves with the number of jobs whose events were removed. */
  sweepRetention(at?: Date): Promise<number>;
  /** Graceful shutdown of the workers: running jobs finish within `timeoutMs`, the rest are handed over. */
  drain(timeoutMs: number): Promise<void>;
}

/**
 * Wires AI jobs: the store, the event tail, submission, the service (get, list, cancel, watch), export,
 * and this instance's workers, which run queries through the AI domain's `queries.open` (budget,
 * retries, accounting and audit included). Change streams wake the workers and the tail where the
 * database has them; the pollers work without.
 */
export function createJobs(deps: { store: Store; keyring: Keyring; config: Config; audit: AuditRecorder; logger: Logger; ai: Pick<Ai, "queries" | "registry"> }): Jobs {
  const { config, audit, logger } = deps;
  const settings = config.jobs;
  const store = createJobsStore(deps.store);
  const onError = (error: unknown) => logger.warn({ err: error }, "job worker error");
  const tail = createJobEventTail({ store, onError });
  const worker = createJobWorker({
    store,
    settings: { concurrency: settings.concurrency, leaseMs: settings.leaseMs, maxAttempts: settings.maxAttempts, pollMinMs: 5, pollMaxMs: settings.pollMaxMs, cancelPollMs: 250 },
    run: {
      queries: deps.ai.queries,
      audit,
      settings: { maxAttempts: settings.maxAttempts, retryBaseMs: settings.retryBaseMs, flushMs: 25, projectEveryMs: 1000 },
      onWritten: (jobId, last) => tail.written(jobId, last),
      onError: (error, jobId) => logger.warn({ err: error, jobId }, "job run error"),
    },
    onError,
  });
  const pageKey = Buffer.from(hkdfSync("sha256", deps.keyring.encryptionKey, Buffer.alloc(0), "portcullis jobs page tokens v1", 32));
  const service = createJobService({ store, audit, tail, pageTokens: createJobPageTokens(pageKey), cancelLocal: (jobId) => worker.cancelLocal(jobId) });
  const submission = createJobSubmission({ store, registry: deps.ai.registry, limits: config.ai, audit, maxUnfinishedPerUser: settings.maxUnfinishedPerUser, onSubmitted: () => worker.poke() });
  const exporter = createJobExport({ store, audit, maxJobs: settings.exportMaxJobs, spool: createTempFileSpool });
  const retention = createJobRetention({ store, audit, retentionMs: settings.eventRetentionMs });

  let changes: { stop(): Promise<void> } | undefined;
  let drained: Promise<void> | undefined;
  const drain = (timeoutMs: number) => (drained ??= worker.drain(timeoutMs));
  return {
    submission,
    service,
    exporter,
    pollers: [
      { stop: () => tail.stop() },
      {
        start() {
          worker.start();
          logger.info({ instanceId: worker.instanceId, concurrency: settings.concurrency }, "job workers started");
        },
        stop: () => drain(0),
      },
      {
        async start() {
          changes = await store
            .watchChanges((what) => (what === "events" ? tail.poke() : worker.poke()))
            .catch((error: unknown) => {
              logger.debug({ err: error }, "no change streams for jobs: polling");
              return undefined;
            });
        },
        stop: () => changes?.stop(),
      },
    ],
    tasks: [{ name: "job event retention sweep", everyMs: RETENTION_SWEEP_MS, run: () => retention.sweep() }],
    sweepRetention: (at) => retention.sweep(at),
    drain,
  };
}
