import type { FinishReason, TokenUsage } from "../ai/chat-provider.ts";
import type { QueryInput } from "../ai/query-input.ts";
import type { Principal } from "../principal.ts";

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type TerminalStatus = "succeeded" | "failed" | "cancelled";

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

export function isTerminal(status: JobStatus): status is TerminalStatus {
  return TERMINAL_STATUSES.has(status);
}

/** Who submitted a job, as much of the principal as a run needs to act for them (budget, audit, accounting). */
export interface JobSubmitter {
  readonly kind: Principal["kind"];
  readonly id: string;
  readonly userId: string;
  readonly displayName: string;
  readonly role: Principal["role"];
  readonly ip: string;
  readonly userAgent: string;
}

/**
 * A job as stored (`jobs`, `_id` = job id). The submitter inserts it; after that only the holder of the
 * job's latest claim writes it (the run's projection: status, output so far, progress, usage), so no
 * two instances ever update it at once. The job's truth lives in insert-only documents — claims,
 * events and the outcome — and this record is their projection for GetJob and ListJobs; where the
 * outcome is decided but not yet projected, readers overlay it (see {@link JobOutcome}).
 */
export interface JobRecord {
  readonly _id: string;
  readonly ownerUserId: string;
  /** The submitting API key, if a key submitted it. */
  readonly apiKeyId?: string;
  readonly submitter: JobSubmitter;
  /** The query as the client sent it (validated at submission, run as it is). */
  readonly request: StoredQuery;
  /** Resolved at submission. */
  readonly provider: string;
  readonly model: string;
  /** max_tokens after the server's default and cap (for progress). */
  readonly maxTokens: number;
  readonly idempotencyKey?: string;
  readonly createdAt: Date;
  readonly status: JobStatus;
  /** The latest run that started (0 before the first). */
  readonly attempt: number;
  readonly startedAt?: Date;
  readonly finishedAt?: Date;
  readonly progressPercent: number;
  readonly outputText: string;
  readonly usage?: TokenUsage;
  readonly finishReason?: FinishReason;
  readonly errorMessage?: string;
  readonly lastEventSequence: number;
  /** Set by retention once the job's events are removed. */
  readonly eventsRemovedAt?: Date;
}

/** The mutable part of a job's record, as the latest claim's holder writes it. */
export type JobProjection = Partial<
  Pick<JobRecord, "status" | "attempt" | "startedAt" | "finishedAt" | "progressPercent" | "outputText" | "usage" | "finishReason" | "errorMessage" | "lastEventSequence" | "eventsRemovedAt">
>;

/** A query as stored: QueryInput without undefined fields. */
export type StoredQuery = QueryInput;

export type JobEventKind = "queued" | "started" | "progress" | "output" | "completed" | "failed" | "cancelled" | "restarted";

export const TERMINAL_EVENT_KINDS: ReadonlySet<JobEventKind> = new Set(["completed", "failed", "cancelled"]);

/**
 * One event of a job's history (`job_events`, `_id` = `<job id>:<sequence, 10 digits>`). The unique
 * `_id` makes the sequence dense and each position written once: every writer inserts at the position
 * after the last it knows, and a writer that finds its position taken stops (a runner) or reads what
 * took it (see job-event-log.ts). So the terminal event is always the last one.
 */
export interface JobEvent {
  readonly jobId: string;
  readonly sequence: number;
  readonly time: Date;
  readonly kind: JobEventKind;
  /** The run it belongs to; 0 for QUEUED. */
  readonly attempt: number;
  readonly progressPercent?: number;
  readonly textDelta?: string;
  readonly errorMessage?: string;
  readonly usage?: TokenUsage;
  readonly finishReason?: FinishReason;
}

/**
 * The terminal outcome (`job_outcomes`, `_id` = job id), insert-only: its insertion is the one decision
 * of how a job ends, so a cancellation and a completion racing on two instances cannot both win.
 * The holder of the job's claim then writes the terminal event and the record's final projection.
 */
export interface JobOutcome {
  readonly jobId: string;
  readonly status: TerminalStatus;
  readonly at: Date;
  readonly errorMessage?: string;
  readonly finishReason?: FinishReason;
  readonly usage?: TokenUsage;
}

/**
 * A claim on one run of a job (`job_claims`, `_id` = `<job id>:<attempt, 4 digits>`). Inserting it is
 * what makes its instance the run's only executor; only that instance updates it afterwards (lease
 * renewals, the end), so it never sees concurrent writes.
 */
export interface JobClaim {
  readonly jobId: string;
  readonly attempt: number;
  readonly instanceId: string;
  readonly claimedAt: Date;
  readonly leaseUntil: Date;
  /** Failed runs before this one (a hand-over at shutdown is not a failure). */
  readonly failures: number;
  /** Set when the run ended: how, and when. */
  readonly end?: { readonly kind: "finished" | "failed" | "released" | "superseded"; readonly at: Date };
}

/**
 * Work for the pollers (`job_tickets`): "run attempt N of job J from time T". `kind` "run" for a queued
 * job, a retry or a hand-over; "takeover" for the moment a running claim's lease would expire, when
 * another instance checks the claim and takes the job over if it was not renewed. Tickets are hints:
 * the claim decides, and a stale ticket is deleted by whoever finds it.
 */
export interface JobTicket {
  readonly id: string;
  readonly jobId: string;
  readonly attempt: number;
  readonly dueAt: Date;
  readonly kind: "run" | "takeover";
  readonly failures: number;
  /** Why the earlier run ended (RESTARTED's error_message); absent for a first run. */
  readonly reason?: string;
}
