import type { AiQueries, AnswerEnd } from "../ai/ai-queries.ts";
import { estimateTokens } from "../ai/query-input.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import { createRunEventWriter, PositionTaken, type RunEventWriter } from "./job-event-writer.ts";
import { finishJob } from "./job-finalizer.ts";
import type { JobClaim, JobOutcome, JobRecord, JobTicket } from "./job-record.ts";
import { runContextOf } from "./job-submitter.ts";
import type { JobsStore } from "./jobs-store.ts";

/** Why a run is stopped from outside, as the reason of its abort signal. */
export class RunStop extends Error {
  readonly kind: "cancelled" | "released" | "lease_lost" | "superseded";
  constructor(kind: RunStop["kind"]) {
    super(`job run stopped: ${kind}`);
    this.name = "RunStop";
    this.kind = kind;
  }
}

/** Domain error codes a retry cannot fix: the job fails at once. */
const PERMANENT = new Set(["invalid_argument", "not_found", "resource_exhausted", "failed_precondition", "permission_denied", "unauthenticated", "out_of_range"]);

export interface RunSettings {
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  /** How long deltas gather before they are written as one OUTPUT event. */
  readonly flushMs: number;
  /** How often the record's projection (output so far, progress) is written while running. */
  readonly projectEveryMs: number;
}

export interface RunDeps {
  readonly store: JobsStore;
  readonly queries: AiQueries;
  readonly audit: AuditRecorder;
  readonly settings: RunSettings;
  readonly onWritten: (jobId: string, lastSequence: number) => void;
  readonly onError: (error: unknown, jobId: string) => void;
  readonly now?: () => Date;
}

/** What a claimed run starts from. */
export interface ClaimedRun {
  readonly job: JobRecord;
  readonly claim: JobClaim;
  readonly ticket: Pick<JobTicket, "reason">;
  /** The sequence of the job's last event when the run was claimed. */
  readonly lastSequence: number;
  /** Aborted (with a {@link RunStop}) to stop the run from outside. */
  readonly signal: AbortSignal;
  /** The id of the takeover ticket the claimer left for this run's lease. */
  readonly takeoverTicketId: string;
}

/**
 * Runs one claimed attempt of a job to its end: STARTED (or RESTARTED, with why the earlier run ended),
 * the answer as OUTPUT events (deltas gathered for `flushMs`) with PROGRESS every tenth of max_tokens,
 * then the outcome. How it ends:
 * - the answer completes → the SUCCEEDED outcome is inserted (a cancellation that won the race instead
 *   makes it CANCELLED) and the job finished;
 * - cancelled (the outcome is already CANCELLED) → the provider call is aborted and the job finished
 *   as CANCELLED with the output so far;
 * - released at shutdown → nothing more is written but a ticket that lets another instance run it at
 *   once (a hand-over is not a failure);
 * - superseded (its event position taken, its lease lost) → it stops writing at once;
 * - failed → retried with exponential backoff (full jitter) while attempts remain and the failure is
 *   one a retry can fix (unavailable, deadline, internal); otherwise FAILED with the reason.
 */
export async function runClaimedJob(deps: RunDeps, run: ClaimedRun): Promise<void> {
  const { store, settings } = deps;
  const now = deps.now ?? (() => new Date());
  const { job, claim } = run;
  const attempt = claim.attempt;
  const writer = createRunEventWriter({
    store,
    jobId: job._id,
    attempt,
    afterSequence: run.lastSequence,
    flushMs: settings.flushMs,
    onWritten: deps.onWritten,
    onError: (e) => deps.onError(e, job._id),
    now,
  });
  let projecting: Promise<void> = Promise.resolve();
  let lastProjected = 0;
  const project = (force: boolean, progressPercent: number) => {
    if (!force && Date.now() - lastProjected < settings.projectEveryMs) return;
    lastProjected = Date.now();
    projecting = projecting.then(() =>
      store
        .updateJob(job._id, { status: "running", attempt, progressPercent, outputText: writer.writtenOutput, lastEventSequence: writer.lastSequence })
        .catch((e: unknown) => deps.onError(e, job._id)),
    );
  };
  let end: AnswerEnd | undefined;
  let usage: AnswerEnd["usage"] | undefined;
  try {
    writer.append(attempt === 1 ? { kind: "started" } : { kind: "restarted", errorMessage: run.ticket.reason ?? "an earlier run did not finish" });
    await Promise.all([
      writer.flush(),
      store.updateJob(job._id, { status: "running", attempt, ...(job.startedAt ? {} : { startedAt: now() }), progressPercent: 0, outputText: "", lastEventSequence: run.lastSequence + 1 }),
    ]);
    const answer = await deps.queries.open(runContextOf(job, attempt), job.request, run.signal, { purpose: "job" });
    const maxTokens = Math.max(1, job.maxTokens);
    let chars = 0;
    let progress = 0;
    let done = false;
    try {
      for (;;) {
        const next = await answer.deltas.next();
        if (next.done) {
          done = true;
          end = next.value;
          break;
        }
        chars += next.value.length;
        writer.append({ kind: "output", textDelta: next.value });
        const percent = Math.min(99, Math.floor((100 * estimateTokens(chars)) / maxTokens));
        if (Math.floor(percent / 10) > Math.floor(progress / 10)) writer.append({ kind: "progress", progressPercent: percent });
        progress = percent;
        project(false, progress);
        if (run.signal.aborted) throw run.signal.reason;
      }
    } finally {
      // Leaving early (cancelled, released, superseded): this ends the provider call and counts its tokens.
      if (!done) await answer.deltas.return(undefined as never).catch(() => undefined);
    }
    usage = end.usage;
    await writer.flush();
    const succeeded: JobOutcome = { jobId: job._id, status: "succeeded", at: now(), usage: end.usage, finishReason: end.finishReason };
    await projecting;
    await finish(deps, job, (await store.insertOutcome(succeeded)) ? succeeded : await store.getOutcome(job._id), writer, attempt, usage);
    await endRun(deps, run, "finished");
  } catch (error) {
    writer.close();
    await projecting;
    await stopped(deps, run, writer, error, usage, now);
  } finally {
    writer.close();
  }
}

async function finish(deps: RunDeps, job: JobRecord, outcome: JobOutcome | undefined, writer: RunEventWriter, attempt: number, usage: AnswerEnd["usage"] | undefined) {
  if (!outcome) throw new Error(`job ${job._id} has no outcome after a duplicate insert`);
  await finishJob({ store: deps.store, audit: deps.audit, onWritten: deps.onWritten }, job, outcome, { writer, attempt, usage });
}

async function endRun(deps: RunDeps, run: ClaimedRun, kind: NonNullable<JobClaim["end"]>["kind"]) {
  await Promise.all([deps.store.deleteTicket(run.takeoverTicketId), deps.store.endClaim(run.job._id, run.claim.attempt, { kind, at: new Date() })]);
}

/** Everything after a run stopped before its answer completed. */
async function stopped(deps: RunDeps, run: ClaimedRun, writer: RunEventWriter, error: unknown, usage: AnswerEnd["usage"] | undefined, now: () => Date) {
  const { store, settings } = deps;
  const { job, claim } = run;
  const stop = run.signal.aborted && run.signal.reason instanceof RunStop ? run.signal.reason.kind : error instanceof PositionTaken ? "superseded" : undefined;
  if (stop === "superseded" || stop === "lease_lost") {
    // Someone else holds the job now: write nothing more.
    await store.endClaim(job._id, claim.attempt, { kind: "superseded", at: now() }).catch(() => undefined);
    return;
  }
  // Output already gathered goes out first, so the record and the stream agree on it.
  await writer.flush().catch(() => undefined);
  const decided = await store.getOutcome(job._id);
  if (decided || stop === "cancelled") {
    if (decided) await finish(deps, job, decided, writer, claim.attempt, usage);
    await endRun(deps, run, "finished");
    return;
  }
  if (stop === "released") {
    await handOver(deps, run, claim.failures, "the instance running it shut down", now());
    await endRun(deps, run, "released");
    return;
  }
  const message = error instanceof DomainError ? error.message : "internal error";
  const permanent = error instanceof DomainError && PERMANENT.has(error.code);
  const failures = claim.failures + 1;
  if (!permanent && failures < settings.maxAttempts) {
    const backoff = Math.random() * settings.retryBaseMs * 2 ** (failures - 1);
    await handOver(deps, run, failures, `run ${claim.attempt} failed: ${message}`, new Date(now().getTime() + backoff));
    await endRun(deps, run, "failed");
    return;
  }
  const failed: JobOutcome = { jobId: job._id, status: "failed", at: now(), errorMessage: permanent || settings.maxAttempts === 1 ? message : `${message} (after ${failures} runs)` };
  await finish(deps, job, (await store.insertOutcome(failed)) ? failed : await store.getOutcome(job._id), writer, claim.attempt, usage);
  await endRun(deps, run, "finished");
}

/** Queues the next run (another instance, or this one after a backoff) and shows the job as queued again. */
async function handOver(deps: RunDeps, run: ClaimedRun, failures: number, reason: string, dueAt: Date) {
  const attempt = run.claim.attempt + 1;
  await deps.store.insertTicket({ id: ticketId(dueAt, run.job._id, attempt), jobId: run.job._id, attempt, dueAt, kind: "run", failures, reason });
  await deps.store.updateJob(run.job._id, { status: "queued" });
}

/** A ticket's `_id`: due time first, so that the due tickets are one `_id` range. */
export function ticketId(dueAt: Date, jobId: string, attempt: number): string {
  return `${String(Math.max(0, dueAt.getTime())).padStart(15, "0")}|${jobId}|${String(attempt).padStart(4, "0")}`;
}
