/** AI jobs: the durable queue's workers, leases, retries, limits and retention. */
export interface JobsConfig {
  /** Jobs one instance runs at once. */
  readonly concurrency: number;
  /** How long a claim on a running job lasts without renewal; another instance takes the job over after it. */
  readonly leaseMs: number;
  /** Runs of a job in all (the first included) before it fails for good. */
  readonly maxAttempts: number;
  /** The first retry's backoff; each further retry doubles it (with jitter). */
  readonly retryBaseMs: number;
  /** Unfinished (queued or running) jobs one user may have. */
  readonly maxUnfinishedPerUser: number;
  /** Jobs one ExportJobs call may hold. */
  readonly exportMaxJobs: number;
  /** A finished job's events are removed this long after it finished. */
  readonly eventRetentionMs: number;
  /** The slowest poll of an idle instance for queued jobs (its fastest is a few milliseconds). */
  readonly pollMaxMs: number;
}

/** The configuration variables of this module, for the README's table and the config file's allow-list. */
export const JOBS_CONFIG_VARIABLES = [
  { name: "PORTCULLIS_JOB_CONCURRENCY", default: "4", description: "AI jobs one instance runs at once (0: this instance runs none, it only queues and serves them)." },
  { name: "PORTCULLIS_JOB_LEASE_MS", default: "30000", description: "A running job's lease: renewed every third of it while the job runs; another instance takes the job over when it expires (the instance died)." },
  { name: "PORTCULLIS_JOB_MAX_ATTEMPTS", default: "3", description: "Runs of a job in all before it fails for good (a failed or interrupted run is retried with backoff; a hand-over at shutdown does not count)." },
  { name: "PORTCULLIS_JOB_RETRY_BASE_MS", default: "1000", description: "Backoff before the first retry of a failed job run; doubled for each further one, with jitter." },
  { name: "PORTCULLIS_JOB_MAX_UNFINISHED_PER_USER", default: "100", description: "Queued or running jobs one user (with all their API keys) may have; SubmitJob beyond it is RESOURCE_EXHAUSTED." },
  { name: "PORTCULLIS_JOB_EXPORT_MAX_JOBS", default: "10000", description: "Most jobs one ExportJobs call exports; more matching jobs is RESOURCE_EXHAUSTED (narrow the filter)." },
  { name: "PORTCULLIS_JOB_EVENT_RETENTION_DAYS", default: "30", description: "A finished job's events (WatchJob) are removed this many days after it finished; the job itself stays. WatchJob then answers OUT_OF_RANGE." },
  { name: "PORTCULLIS_JOB_POLL_MAX_MS", default: "1000", description: "Slowest poll of an idle instance for queued jobs and hand-overs (it backs off to this when there is no work; change streams wake it at once where the database has them)." },
] as const;

/** Parses the job variables; `get` returns a trimmed value or undefined, `fail` makes the configuration error. */
export function parseJobsConfig(get: (name: string) => string | undefined, fail: (variable: string, problem: string) => Error): JobsConfig {
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(value >= min && value <= max)) throw fail(name, `must be a whole number from ${min} to ${max}`);
    return value;
  };
  return Object.freeze({
    concurrency: integer("PORTCULLIS_JOB_CONCURRENCY", 4, 0, 1000),
    leaseMs: integer("PORTCULLIS_JOB_LEASE_MS", 30_000, 300, 3_600_000),
    maxAttempts: integer("PORTCULLIS_JOB_MAX_ATTEMPTS", 3, 1, 100),
    retryBaseMs: integer("PORTCULLIS_JOB_RETRY_BASE_MS", 1000, 0, 3_600_000),
    maxUnfinishedPerUser: integer("PORTCULLIS_JOB_MAX_UNFINISHED_PER_USER", 100, 1, 100_000),
    exportMaxJobs: integer("PORTCULLIS_JOB_EXPORT_MAX_JOBS", 10_000, 1, 10_000_000),
    eventRetentionMs: 86_400_000 * integer("PORTCULLIS_JOB_EVENT_RETENTION_DAYS", 30, 1, 36_500),
    pollMaxMs: integer("PORTCULLIS_JOB_POLL_MAX_MS", 1000, 10, 60_000),
  });
}
