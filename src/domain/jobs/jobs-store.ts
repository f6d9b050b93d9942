import type { JobClaim, JobEvent, JobOutcome, JobProjection, JobRecord, JobStatus, JobTicket } from "./job-record.ts";

/** Which jobs a listing covers: one owner's (an `_id` range: job ids start with the owner's id) or everyone's. */
export type JobOwnerScope = { readonly ownerUserId: string } | { readonly all: true };

/** A page of jobs, newest first, after a position (the last job id of the previous page). */
export interface JobListQuery {
  readonly scope: JobOwnerScope;
  /** Only these statuses (of the stored projection); undefined for all. */
  readonly statuses?: readonly JobStatus[];
  /** Continue after this job (exclusive; by id within an owner, by creation time then id for everyone); undefined for the newest. */
  readonly after?: { readonly id: string; readonly createdAt: number };
  /** Only jobs created in [from, to). */
  readonly createdFrom?: Date;
  readonly createdTo?: Date;
  readonly limit: number;
}

/** An idempotency key's generation: `_id` `<user>|<key hash>|<generation>`, insert-only. */
export interface IdempotencyRecord {
  readonly userId: string;
  readonly keyHash: string;
  readonly generation: number;
  readonly jobId: string;
  readonly parametersHash: string;
  readonly createdAt: Date;
}

/** One of a user's unfinished-job places: `_id` `<user>:<slot>`, inserted to take it, deleted when the job ends. */
export interface JobSlot {
  readonly userId: string;
  readonly slot: number;
  readonly jobId: string;
  readonly takenAt: Date;
}

/**
 * What the job domain needs of the database (implemented by src/store/jobs-store.ts). Every decision
 * that must happen once is an insert with a unique `_id` that reports a duplicate as `false`: FerretDB
 * 1.x has no transactions and no atomic conditional update, but it does enforce unique ids. Reads are by
 * `_id` or `_id` range wherever the hot path goes, so speed does not depend on secondary indexes.
 */
export interface JobsStore {
  insertJob(job: JobRecord): Promise<void>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  getJobs(jobIds: readonly string[]): Promise<JobRecord[]>;
  /** Writes the projection; only the holder of the job's latest claim calls it. */
  updateJob(jobId: string, set: JobProjection): Promise<void>;
  listJobs(query: JobListQuery): Promise<JobRecord[]>;
  /** Streams the matching jobs, newest first, in pages (export). */
  iterateJobs(query: Omit<JobListQuery, "limit">, pageSize: number): AsyncGenerator<JobRecord>;
  countJobs(query: Omit<JobListQuery, "limit" | "after">): Promise<number>;

  /** Inserts events in order; resolves with how many were written before the first taken position. */
  insertEvents(events: readonly JobEvent[]): Promise<number>;
  getEvent(jobId: string, sequence: number): Promise<JobEvent | undefined>;
  /** Events with a sequence ≥ `from`, in order, at most `limit`. */
  eventsFrom(jobId: string, from: number, limit: number): Promise<JobEvent[]>;
  /**
   * The job's last event, looking from `hint` (a sequence known to exist, such as the record's
   * `lastEventSequence`; 0 for none) onwards; undefined when there is none (or the hint is gone).
   */
  lastEvent(jobId: string, hint: number): Promise<JobEvent | undefined>;
  /** Which of these positions exist (one query for every watched job: the tail's poll). */
  existingEvents(positions: ReadonlyArray<{ jobId: string; sequence: number }>): Promise<JobEvent[]>;
  /**
   * Moves a finished job's events (all of them, given in order) into one archive document and removes
   * them from the live collection, which so holds only unfinished jobs' events: on FerretDB even a
   * point read costs in proportion to its collection's size.
   */
  archiveEvents(jobId: string, events: readonly JobEvent[]): Promise<void>;
  /** A finished job's archived events, in order; undefined when not archived (yet). */
  archivedEvents(jobId: string): Promise<JobEvent[] | undefined>;
  /** Removes the events of these jobs, live and archived (retention). */
  deleteEvents(jobIds: readonly string[]): Promise<void>;

  insertClaim(claim: JobClaim): Promise<boolean>;
  getClaim(jobId: string, attempt: number): Promise<JobClaim | undefined>;
  /** The job's latest claim, looking from attempt `hint` (the record's `attempt`) onwards. */
  latestClaim(jobId: string, hint: number): Promise<JobClaim | undefined>;
  /** Which of these claims exist (supersession checks of a running instance's jobs). */
  existingClaims(claims: ReadonlyArray<{ jobId: string; attempt: number }>): Promise<JobClaim[]>;
  renewClaims(claims: ReadonlyArray<{ jobId: string; attempt: number }>, leaseUntil: Date): Promise<void>;
  endClaim(jobId: string, attempt: number, end: NonNullable<JobClaim["end"]>): Promise<void>;
  /** Removes a finished job's claims (its record is terminal: no run can start again). */
  deleteClaims(jobId: string): Promise<void>;

  insertTicket(ticket: JobTicket): Promise<boolean>;
  deleteTicket(ticketId: string): Promise<void>;
  /** Tickets due at `now`, oldest first. */
  dueTickets(now: Date, limit: number): Promise<JobTicket[]>;

  insertOutcome(outcome: JobOutcome): Promise<boolean>;
  getOutcome(jobId: string): Promise<JobOutcome | undefined>;
  getOutcomes(jobIds: readonly string[]): Promise<JobOutcome[]>;

  slotsOf(userId: string): Promise<JobSlot[]>;
  insertSlot(slot: JobSlot): Promise<boolean>;
  deleteSlot(userId: string, slot: number): Promise<void>;
  deleteSlotOf(userId: string, jobId: string): Promise<void>;

  idempotencyGenerations(userId: string, keyHash: string): Promise<IdempotencyRecord[]>;
  insertIdempotency(record: IdempotencyRecord): Promise<boolean>;
  deleteIdempotency(record: Pick<IdempotencyRecord, "userId" | "keyHash" | "generation">): Promise<void>;
  /** Removes idempotency records created before `before`. */
  sweepIdempotency(before: Date): Promise<number>;

  /** Finished jobs whose events are still kept and that finished before `before`, at most `limit`. */
  finishedBefore(before: Date, limit: number): Promise<JobRecord[]>;

  /**
   * Calls `onChange` when jobs' tickets, events or outcomes change, through the database's change
   * streams where it has them (MongoDB replica sets); returns false when it has none (FerretDB,
   * a standalone mongod), and the caller polls. A hint only: readers always read what changed.
   */
  watchChanges(onChange: (what: "tickets" | "events" | "outcomes") => void): Promise<{ stop(): Promise<void> } | undefined>;
}
