import type { AuditRecorder } from "../audit/audit-recorder.ts";
import type { JobsStore } from "./jobs-store.ts";

const BATCH = 200;
const IDEMPOTENCY_KEPT_MS = 25 * 3_600_000;

/**
 * Removes the events of jobs that finished more than `retentionMs` ago (the job record stays, marked, so
 * WatchJob answers OUT_OF_RANGE rather than an empty replay), and idempotency keys past their 24 hours.
 * Runs rarely (hourly) and in batches: there is no TTL index on FerretDB.
 */
export function createJobRetention(deps: { store: JobsStore; audit: AuditRecorder; retentionMs: number; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  return {
    /** One sweep as of `at`; resolves with the number of jobs whose events were removed. */
    async sweep(at: Date = now()): Promise<number> {
      const before = new Date(at.getTime() - deps.retentionMs);
      let removed = 0;
      for (;;) {
        const jobs = await deps.store.finishedBefore(before, BATCH);
        await deps.store.deleteEvents(jobs.map((job) => job._id));
        await Promise.all(jobs.map((job) => deps.store.updateJob(job._id, { eventsRemovedAt: at })));
        removed += jobs.length;
        if (jobs.length < BATCH) break;
      }
      await deps.store.sweepIdempotency(new Date(at.getTime() - IDEMPOTENCY_KEPT_MS));
      if (removed > 0)
        deps.audit.record({
          type: "job.retention_sweep",
          outcome: "success",
          actor: { kind: "system", display: "retention" },
          metadata: { jobs: removed, retention_days: Math.round(deps.retentionMs / 86_400_000) },
        });
      return removed;
    },
  };
}
