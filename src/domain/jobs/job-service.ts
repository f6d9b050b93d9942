import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import { resolvePageSize } from "../users/user-paging.ts";
import type { JobEventTail } from "./job-event-tail.ts";
import { finishJob } from "./job-finalizer.ts";
import { ticketId } from "./job-run.ts";
import { isUserId, jobOwnerOf } from "./job-ids.ts";
import type { JobPageTokens } from "./job-page-token.ts";
import { isTerminal, TERMINAL_EVENT_KINDS, type JobEvent, type JobOutcome, type JobRecord, type JobStatus } from "./job-record.ts";
import type { JobOwnerScope, JobsStore } from "./jobs-store.ts";

/** ListJobs' selection, converted from the request. */
export interface ListJobsInput {
  readonly status: JobStatus | undefined;
  readonly pageSize: number;
  readonly pageToken: string;
  readonly userId: string;
  readonly allUsers: boolean;
}

const REPLAY_BATCH = 500;

/** The record as readers see it: an outcome decided but not yet projected (a cancellation) wins. */
export function withOutcome(job: JobRecord, outcome: JobOutcome | undefined): JobRecord {
  if (!outcome || isTerminal(job.status)) return job;
  return {
    ...job,
    status: outcome.status,
    finishedAt: outcome.at,
    ...(outcome.errorMessage ? { errorMessage: outcome.errorMessage } : {}),
    ...(outcome.finishReason ? { finishReason: outcome.finishReason } : {}),
    ...(outcome.usage ? { usage: outcome.usage } : {}),
  };
}

/**
 * GetJob, ListJobs, CancelJob and WatchJob. A job belongs to its owner (a key's jobs to the key's
 * owner); another user's job is NOT_FOUND — decided from the job id alone, before any database read —
 * unless the caller holds `users.manage`, whose reads of other users' jobs are audited.
 */
export function createJobService(deps: {
  store: JobsStore;
  audit: AuditRecorder;
  tail: JobEventTail;
  pageTokens: JobPageTokens;
  /** Stops a run on this instance at once (CancelJob here); other instances notice within their poll. */
  cancelLocal: (jobId: string) => void;
  now?: () => Date;
}) {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());
  const mayManageOthers = (ctx: RequestContext) => ctx.principal.permissions.has("users.manage");

  const auditRead = (ctx: RequestContext, target: { kind: string; id: string }, type = "job.read") => deps.audit.record({ type, outcome: "success", ...auditedCaller(ctx), target });

  /** The job as the caller may see it; NOT_FOUND when they may not, exactly as when it does not exist. */
  const visibleJob = async (ctx: RequestContext, jobId: string, purpose = "job.read"): Promise<JobRecord> => {
    const owner = jobOwnerOf(jobId);
    const own = owner === ctx.principal.userId;
    if (!own && !mayManageOthers(ctx)) throw new DomainError("not_found", "job not found");
    const job = await store.getJob(jobId);
    if (!job) throw new DomainError("not_found", "job not found");
    if (!own) auditRead(ctx, { kind: "job", id: jobId }, purpose);
    return isTerminal(job.status) ? job : withOutcome(job, await store.getOutcome(jobId));
  };

  const scopeOf = (ctx: RequestContext, input: Pick<ListJobsInput, "userId" | "allUsers">): JobOwnerScope => {
    if (input.allUsers || (input.userId !== "" && input.userId !== ctx.principal.userId)) {
      if (!mayManageOthers(ctx)) throw new DomainError("permission_denied", "listing other users' jobs needs users.manage");
      if (input.allUsers) return { all: true };
      if (!isUserId(input.userId)) throw new DomainError("invalid_argument", "user_id is malformed");
      return { ownerUserId: input.userId };
    }
    return { ownerUserId: ctx.principal.userId };
  };

  return {
    get: (ctx: RequestContext, jobId: string) => visibleJob(ctx, jobId),

    async list(ctx: RequestContext, input: ListJobsInput): Promise<{ jobs: JobRecord[]; nextPageToken: string }> {
      const pageSize = resolvePageSize(input.pageSize);
      const scope = scopeOf(ctx, input);
      const tokenScope = { caller: ctx.principal.userId, owner: "all" in scope ? "*" : scope.ownerUserId, status: input.status ?? "" };
      let cursor = input.pageToken === "" ? undefined : deps.pageTokens.decode(input.pageToken, tokenScope);
      // The stored status may lag a decided outcome (a cancellation being projected): unfinished jobs
      // are read along and overlaid. They are few — at most the cap per user.
      const statuses: JobStatus[] | undefined = input.status === undefined ? undefined : isTerminal(input.status) ? [input.status, "queued", "running"] : [input.status];
      const jobs: JobRecord[] = [];
      for (let exhausted = false; jobs.length <= pageSize && !exhausted; ) {
        const batch = await store.listJobs({ scope, ...(statuses ? { statuses } : {}), ...(cursor ? { after: cursor } : {}), limit: pageSize + 1 });
        const open = batch.filter((j) => !isTerminal(j.status)).map((j) => j._id);
        const outcomes = new Map((open.length > 0 ? await store.getOutcomes(open) : []).map((o) => [o.jobId, o]));
        for (const job of batch) {
          const seen = withOutcome(job, outcomes.get(job._id));
          if (input.status === undefined || seen.status === input.status) jobs.push(seen);
        }
        exhausted = batch.length < pageSize + 1;
        const last = batch.at(-1);
        if (last) cursor = { id: last._id, createdAt: last.createdAt.getTime() };
      }
      const page = jobs.slice(0, pageSize);
      if (!("ownerUserId" in scope && scope.ownerUserId === ctx.principal.userId)) auditRead(ctx, { kind: "user", id: "all" in scope ? "*" : scope.ownerUserId }, "job.list");
      const last = page.at(-1);
      return { jobs: page, nextPageToken: jobs.length > pageSize && last ? deps.pageTokens.encode({ id: last._id, createdAt: last.createdAt.getTime() }, tokenScope) : "" };
    },

    /**
     * Decides the cancellation by inserting the CANCELLED outcome (unique per job, so it cannot race a
     * completion into both), then stops the run: here at once, elsewhere within that instance's poll.
     * A job nobody runs (queued, or its instance gone) is finished here, by claiming its next run.
     */
    async cancel(ctx: RequestContext, jobId: string): Promise<JobRecord> {
      const own = jobOwnerOf(jobId) === ctx.principal.userId;
      if (!own && !mayManageOthers(ctx)) throw new DomainError("not_found", "job not found");
      const stored = await store.getJob(jobId);
      if (!stored) throw new DomainError("not_found", "job not found");
      // Seen through users.manage, but not theirs to stop (the denial is audited by the interceptor).
      if (!own) throw new DomainError("permission_denied", "only a job's owner may cancel it");
      const job = isTerminal(stored.status) ? stored : withOutcome(stored, await store.getOutcome(jobId));
      if (isTerminal(job.status)) throw new DomainError("failed_precondition", `the job already finished (${job.status})`);
      const outcome: JobOutcome = { jobId, status: "cancelled", at: now(), finishReason: "cancelled" };
      if (!(await store.insertOutcome(outcome))) {
        const decided = await store.getOutcome(jobId);
        throw new DomainError("failed_precondition", `the job already finished (${decided?.status ?? "finished"})`);
      }
      await deps.audit.recordNow({
        type: "job.cancel",
        outcome: "success",
        ...auditedCaller(ctx),
        target: { kind: "job", id: jobId },
        metadata: { user_id: job.ownerUserId, status_before: job.status },
      });
      deps.cancelLocal(jobId);
      await finishIfUnattended(stored, outcome).catch(() => undefined);
      return withOutcome(job, outcome);
    },

    /**
     * The job's events from `fromSequence`, then new ones as they are written anywhere, ending after the
     * terminal event. OUT_OF_RANGE when retention removed them.
     */
    async *watch(ctx: RequestContext, jobId: string, fromSequence: number, signal: AbortSignal): AsyncGenerator<JobEvent> {
      const job = await visibleJob(ctx, jobId);
      if (job.eventsRemovedAt) throw new DomainError("out_of_range", `the job's events were removed on ${job.eventsRemovedAt.toISOString()} (retention)`);
      let next = Math.max(1, fromSequence);
      // A finished job's history is one archived document.
      const replay = async function* (archived: readonly JobEvent[]) {
        for (const event of archived) if (event.sequence >= next) yield event;
      };
      if (isTerminal(job.status)) {
        const archived = await store.archivedEvents(jobId);
        if (archived) return yield* replay(archived);
      }
      while (!signal.aborted) {
        const batch = await store.eventsFrom(jobId, next, REPLAY_BATCH);
        for (const event of batch) {
          yield event;
          next = event.sequence + 1;
          if (TERMINAL_EVENT_KINDS.has(event.kind)) return;
        }
        if (batch.length === REPLAY_BATCH) continue;
        if (batch.length > 0 || next === 1) {
          await deps.tail.waitFor(jobId, next, signal);
          continue;
        }
        // Nothing at `next`: either it is the next position, or it lies past the end.
        const last = await store.lastEvent(jobId, job.lastEventSequence);
        if (!last && job.lastEventSequence > 0) {
          // Its live events are gone: the job finished meanwhile and they were archived.
          const archived = await store.archivedEvents(jobId);
          if (archived) return yield* replay(archived);
        }
        // A job that ended before `next` has nothing more to send.
        if (last && TERMINAL_EVENT_KINDS.has(last.kind)) return;
        // Otherwise wait for `next`, or, past the end of a running job, for its next event.
        await deps.tail.waitFor(jobId, last && last.sequence + 1 < next ? last.sequence + 1 : next, signal);
      }
    },
  };

  /** Finishes a cancelled job when no live run holds it (queued, or its instance died); else its run does. */
  async function finishIfUnattended(stored: JobRecord, outcome: JobOutcome): Promise<void> {
    const jobId = stored._id;
    const latest = await store.latestClaim(jobId, stored.attempt);
    if (latest && !latest.end && latest.leaseUntil.getTime() > now().getTime()) return;
    const attempt = (latest?.attempt ?? 0) + 1;
    const leaseUntil = new Date(now().getTime() + 60_000);
    if (!(await store.insertClaim({ jobId, attempt, instanceId: "cancel", claimedAt: now(), leaseUntil, failures: latest?.failures ?? 0 }))) return;
    // Should this instance die before the job is finished, the next claim's holder finishes it.
    const takeover = { id: ticketId(leaseUntil, jobId, attempt + 1), jobId, attempt: attempt + 1, dueAt: leaseUntil, kind: "takeover" as const, failures: latest?.failures ?? 0 };
    await store.insertTicket(takeover);
    const job = await store.getJob(jobId);
    if (job) await finishJob({ store, audit: deps.audit, onWritten: deps.tail.written }, job, outcome);
    await Promise.all([store.endClaim(jobId, attempt, { kind: "finished", at: now() }), store.deleteTicket(takeover.id)]);
  }
}

export type JobService = ReturnType<typeof createJobService>;
