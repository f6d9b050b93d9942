import { hkdfSync } from "node:crypto";
import type { Config } from "../config/config.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createJobEventTail } from "../domain/jobs/job-event-tail.ts";
import { createJobExport } from "../domain/jobs/job-export.ts";
import { createJobPageTokens } from "../domain/jobs/job-page-token.ts";
import { createJobRetention } from "../domain/jobs/job-retention.ts";
import { createJobService, type JobService } from "../domain/jobs/job-service.ts";
import { createJobSubmission, type JobSubmission } from "../domain/jobs/job-submission.ts";
import { createJobWorker, type JobWorker } from "../domain/jobs/job-worker.ts";
import { createJobHandlers } from "../handlers/ai-jobs.ts";
import type { ServiceHandlers } from "../handlers/routes.ts";
import type { Keyring } from "../keys/keyring.ts";
import type { Logger } from "../log/logger.ts";
import { createJobsStore } from "../store/jobs-store.ts";
import type { Store } from "../store/mongo-store.ts";
import { createTempFileSpool } from "../store/temp-file-spool.ts";
import type { AiCapability } from "./ai.ts";

const RETENTION_SWEEP_MS = 3_600_000;

export interface JobsCapability {
  readonly handlers: NonNullable<ServiceHandlers["ai"]>;
  readonly worker: JobWorker;
  readonly service: JobService;
  readonly submission: JobSubmission;
  /** Sweeps expired events as of `at` (default now; also done hourly); for tests and operators. */
  sweepRetention(at?: Date): Promise<number>;
  /** Graceful shutdown of the workers (see JobWorker.drain). */
  drain(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Wires AI jobs: the store, the event tail, submission, the service (get, list, cancel, watch), export,
 * this instance's workers (which run queries through the AI capability's `queries.open`: budget,
 * retries, accounting and audit included) and the retention sweep; then starts the workers, and the
 * change streams that wake them where the database has them.
 */
export function createJobs(deps: { store: Store; keyring: Keyring; config: Config; audit: AuditRecorder; logger: Logger; ai: AiCapability }): JobsCapability {
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

  worker.start();
  logger.info({ instanceId: worker.instanceId, concurrency: settings.concurrency }, "job workers started");
  const sweeper = setInterval(() => void retention.sweep().catch((error: unknown) => logger.warn({ err: error }, "job retention sweep failed")), RETENTION_SWEEP_MS);
  sweeper.unref();
  const changes = store
    .watchChanges((what) => (what === "events" ? tail.poke() : worker.poke()))
    .catch((error: unknown) => {
      logger.debug({ err: error }, "no change streams for jobs: polling");
      return undefined;
    });

  let drained: Promise<void> | undefined;
  return {
    handlers: createJobHandlers({ submission, service, exporter }),
    worker,
    service,
    submission,
    sweepRetention: (at) => retention.sweep(at),
    drain(timeoutMs) {
      drained ??= worker.drain(timeoutMs);
      return drained;
    },
    async stop() {
      clearInterval(sweeper);
      await this.drain(0);
      tail.stop();
      await (await changes)?.stop();
    },
  };
}
