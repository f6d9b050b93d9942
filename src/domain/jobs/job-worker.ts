import { randomUUID } from "node:crypto";
import { finishJob } from "./job-finalizer.ts";
import { isTerminal, type JobClaim, type JobOutcome, type JobTicket } from "./job-record.ts";
import { RunStop, runClaimedJob, ticketId, type RunDeps } from "./job-run.ts";
import type { JobsStore } from "./jobs-store.ts";

export interface WorkerSettings {
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly maxAttempts: number;
  /** Fastest and slowest ticket poll; the interval doubles while there is no work. */
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  /** How often this instance's running jobs are checked for a cancellation decided elsewhere. */
  readonly cancelPollMs: number;
}

/**
 * The job workers of one instance. One poller reads the due tickets (an `_id` range of a small
 * collection: only unfinished jobs have tickets), backing off while idle and woken at once by this
 * instance's submissions and by change streams where the database has them. A ticket is turned into a
 * run only by inserting its claim (`<job>:<attempt>`, unique): of all the instances that see a ticket,
 * exactly one runs it. While runs are in progress the worker renews their leases every third of the
 * lease (and leaves a takeover ticket at the lease's end, so that another instance takes the job over
 * if this one dies), and checks every `cancelPollMs` whether their outcome was decided elsewhere
 * (CancelJob on another instance): such a run is aborted at once.
 */
export interface JobWorker {
  start(): void;
  /** Poll now (a job was submitted here, or a change stream saw a ticket). */
  poke(): void;
  /** Stops the run of `jobId` here, if it runs here (its outcome is already CANCELLED). */
  cancelLocal(jobId: string): void;
  /** Whether a run of `jobId` is in progress here. */
  runs(jobId: string): boolean;
  /**
   * Graceful stop: claims nothing more, lets running jobs finish for up to `timeoutMs`, then releases
   * the rest (their provider calls aborted) with tickets due at once, so another instance runs them
   * without waiting for their leases to expire.
   */
  drain(timeoutMs: number): Promise<void>;
  readonly instanceId: string;
}

interface Running {
  readonly claim: JobClaim;
  readonly abort: AbortController;
  takeoverTicketId: string;
  leaseUntil: Date;
  readonly done: Promise<void>;
}

export function createJobWorker(deps: { store: JobsStore; run: Omit<RunDeps, "store">; settings: WorkerSettings; now?: () => Date; onError: (error: unknown) => void }): JobWorker {
  const { store, settings } = deps;
  const now = deps.now ?? (() => new Date());
  const instanceId = randomUUID();
  const running = new Map<string, Running>();
  const considering = new Set<string>();
  let pollTimer: NodeJS.Timeout | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let cancelTimer: NodeJS.Timeout | undefined;
  let interval = settings.pollMinMs;
  let polling = false;
  let again = false;
  let accepting = false;

  const free = () => settings.concurrency - running.size - considering.size;

  const schedulePoll = (ms: number) => {
    if (!accepting || pollTimer) return;
    pollTimer = setTimeout(() => {
      pollTimer = undefined;
      void poll();
    }, ms);
    pollTimer.unref();
  };

  const poll = async () => {
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    let worked = false;
    try {
      if (accepting && free() > 0) {
        const due = await store.dueTickets(now(), Math.max(4, free() * 2));
        // Claims are tried side by side, as many as there are free places: a claim is a few round trips.
        const chosen: JobTicket[] = [];
        for (const ticket of due) {
          if (chosen.length >= free()) break;
          if (running.has(ticket.jobId) || considering.has(ticket.jobId) || chosen.some((t) => t.jobId === ticket.jobId)) continue;
          chosen.push(ticket);
        }
        for (const ticket of chosen) considering.add(ticket.jobId);
        worked = (await Promise.all(chosen.map(consider))).some(Boolean) || due.length > chosen.length;
      }
    } catch (error) {
      deps.onError(error);
    } finally {
      polling = false;
    }
    interval = worked || again ? settings.pollMinMs : Math.min(interval * 2, settings.pollMaxMs);
    again = false;
    schedulePoll(free() > 0 ? interval : settings.pollMaxMs);
  };

  /** Claims the ticket's run if it is still to be had; true when this instance took it. */
  const consider = async (ticket: JobTicket): Promise<boolean> => {
    try {
      let failures = ticket.failures;
      let reason = ticket.reason;
      if (ticket.kind === "takeover") {
        const previous = await store.getClaim(ticket.jobId, ticket.attempt - 1);
        if (!previous || previous.end) {
          await store.deleteTicket(ticket.id);
          return false;
        }
        if (previous.leaseUntil.getTime() > now().getTime()) {
          // Renewed since the ticket was left: look again when the lease would end.
          await store.insertTicket({ ...ticket, id: ticketId(previous.leaseUntil, ticket.jobId, ticket.attempt), dueAt: previous.leaseUntil });
          await store.deleteTicket(ticket.id);
          return false;
        }
        failures = previous.failures + 1;
        reason = `the instance running run ${previous.attempt} stopped answering (its lease expired)`;
      }
      const at = now();
      const claim: JobClaim = { jobId: ticket.jobId, attempt: ticket.attempt, instanceId, claimedAt: at, leaseUntil: new Date(at.getTime() + settings.leaseMs), failures };
      if (!(await store.insertClaim(claim))) {
        await store.deleteTicket(ticket.id);
        return false;
      }
      await begin(claim, reason, ticket.id);
      return true;
    } finally {
      considering.delete(ticket.jobId);
    }
  };

  /** This instance holds `claim`: finish a job that is decided, give up on one out of attempts, or run it. */
  const begin = async (claim: JobClaim, reason: string | undefined, claimedTicketId: string) => {
    // One round of independent reads and writes: the job, whether its outcome is decided, the claimed
    // ticket gone, and the takeover ticket for this run's lease.
    const takeover: JobTicket = {
      id: ticketId(claim.leaseUntil, claim.jobId, claim.attempt + 1),
      jobId: claim.jobId,
      attempt: claim.attempt + 1,
      dueAt: claim.leaseUntil,
      kind: "takeover",
      failures: claim.failures,
    };
    const [job, outcome] = await Promise.all([store.getJob(claim.jobId), store.getOutcome(claim.jobId), store.deleteTicket(claimedTicketId), store.insertTicket(takeover)]);
    const end = async (kind: "finished" | "failed") => {
      await Promise.all([store.deleteTicket(takeover.id), store.endClaim(claim.jobId, claim.attempt, { kind, at: now() })]);
    };
    if (!job) return end("finished");
    const finishing = { store, audit: deps.run.audit, onWritten: deps.run.onWritten };
    // A finished record means nothing is left to do (its events may already be archived).
    if (isTerminal(job.status)) return end("finished");
    if (outcome) {
      await finishJob(finishing, { ...job, attempt: claim.attempt }, outcome);
      return end("finished");
    }
    if (claim.failures >= settings.maxAttempts) {
      const failed: JobOutcome = { jobId: job._id, status: "failed", at: now(), errorMessage: `gave up after ${claim.failures} failed runs; the last: ${reason ?? "unknown"}` };
      await finishJob(finishing, job, (await store.insertOutcome(failed)) ? failed : ((await store.getOutcome(job._id)) ?? failed));
      return end("finished");
    }
    // Only claim holders write events, so a first run starts after QUEUED; a later one looks from the
    // record's last known sequence (its projection may lag the run before by up to a second).
    const last = claim.attempt === 1 ? job.lastEventSequence : ((await store.lastEvent(job._id, job.lastEventSequence))?.sequence ?? job.lastEventSequence);
    const abort = new AbortController();
    const entry: Running = {
      claim,
      abort,
      takeoverTicketId: takeover.id,
      leaseUntil: claim.leaseUntil,
      done: runClaimedJob(
        { ...deps.run, store },
        {
          job,
          claim,
          ticket: { ...(reason ? { reason } : {}) },
          lastSequence: last,
          signal: abort.signal,
          get takeoverTicketId() {
            return entry.takeoverTicketId;
          },
        },
      )
        .catch((error: unknown) => deps.onError(error))
        .finally(() => {
          running.delete(job._id);
          if (running.size === 0) stopTimers();
          // A place is free: look for work now, not at the slow poll scheduled while all were busy.
          poke();
        }),
    };
    running.set(job._id, entry);
    startTimers();
  };

  const poke = () => {
    if (!accepting) return;
    interval = settings.pollMinMs;
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = undefined;
    if (polling) again = true;
    else schedulePoll(0);
  };

  const renew = async () => {
    const entries = [...running.values()];
    if (entries.length === 0) return;
    const at = now();
    const leaseUntil = new Date(at.getTime() + settings.leaseMs);
    try {
      const superseded = await store.existingClaims(entries.map((e) => ({ jobId: e.claim.jobId, attempt: e.claim.attempt + 1 })));
      for (const claim of superseded) running.get(claim.jobId)?.abort.abort(new RunStop("superseded"));
      await store.renewClaims(
        entries.map((e) => ({ jobId: e.claim.jobId, attempt: e.claim.attempt })),
        leaseUntil,
      );
      for (const e of entries) {
        e.leaseUntil = leaseUntil;
        const moved = ticketId(leaseUntil, e.claim.jobId, e.claim.attempt + 1);
        if (await store.insertTicket({ id: moved, jobId: e.claim.jobId, attempt: e.claim.attempt + 1, dueAt: leaseUntil, kind: "takeover", failures: e.claim.failures })) {
          await store.deleteTicket(e.takeoverTicketId);
          e.takeoverTicketId = moved;
        }
      }
    } catch (error) {
      deps.onError(error);
      // A lease this instance could not renew will be taken over: stop before that happens.
      for (const e of entries) if (e.leaseUntil.getTime() - settings.leaseMs / 6 <= now().getTime()) e.abort.abort(new RunStop("lease_lost"));
    }
  };

  const checkCancelled = async () => {
    if (running.size === 0) return;
    try {
      for (const outcome of await store.getOutcomes([...running.keys()])) {
        running.get(outcome.jobId)?.abort.abort(new RunStop(outcome.status === "cancelled" ? "cancelled" : "superseded"));
      }
    } catch (error) {
      deps.onError(error);
    }
  };

  const startTimers = () => {
    if (!renewTimer) {
      renewTimer = setInterval(() => void renew(), Math.max(50, Math.floor(settings.leaseMs / 3)));
      renewTimer.unref();
    }
    if (!cancelTimer) {
      cancelTimer = setInterval(() => void checkCancelled(), settings.cancelPollMs);
      cancelTimer.unref();
    }
  };
  const stopTimers = () => {
    if (renewTimer) clearInterval(renewTimer);
    if (cancelTimer) clearInterval(cancelTimer);
    renewTimer = cancelTimer = undefined;
  };

  return {
    instanceId,
    start() {
      if (settings.concurrency === 0) return;
      accepting = true;
      schedulePoll(0);
    },
    poke,
    cancelLocal(jobId) {
      running.get(jobId)?.abort.abort(new RunStop("cancelled"));
    },
    runs: (jobId) => running.has(jobId),
    async drain(timeoutMs) {
      accepting = false;
      if (pollTimer) clearTimeout(pollTimer);
      pollTimer = undefined;
      const all = () => Promise.all([...running.values()].map((e) => e.done));
      if (running.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([all(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
        clearTimeout(timer);
      }
      for (const e of running.values()) e.abort.abort(new RunStop("released"));
      await all();
      stopTimers();
    },
  };
}
