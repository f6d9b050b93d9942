import { createHash, randomInt } from "node:crypto";
import type { ProviderRegistry } from "../ai/provider-registry.ts";
import { validateQuery, type QueryInput, type QueryLimits } from "../ai/query-input.ts";
import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import { newJobId } from "./job-ids.ts";
import type { JobOutcome, JobRecord } from "./job-record.ts";
import { ticketId } from "./job-run.ts";
import { submitterOf } from "./job-submitter.ts";
import type { IdempotencyRecord, JobsStore } from "./jobs-store.ts";

export const MAX_IDEMPOTENCY_KEY_CHARS = 128;
const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;
/** How long a resubmission waits for the job a concurrent submission with its key is creating. */
const CREATION_WAIT_MS = 5_000;
/** A key or place whose job never appeared after this long was left by a submission that died. */
const ORPHAN_AFTER_MS = 60_000;

export interface SubmitInput extends QueryInput {
  readonly idempotencyKey: string;
}

/**
 * SubmitJob. The steps that must happen once are inserts with unique ids:
 * 1. the query is validated and its provider and model resolved (INVALID_ARGUMENT, NOT_FOUND) before
 *    anything is written;
 * 2. an idempotency key is looked up by `<user>|<key hash>|<generation>`; the newest generation within
 *    24 hours answers the resubmission (ALREADY_EXISTS when its parameters differ); otherwise the key's
 *    next generation is inserted: of concurrent submissions with one key exactly one wins, the others
 *    answer with the winner's job;
 * 3. one of the user's unfinished-job places is taken (`<user>:<n>` for n below the cap):
 *    RESOURCE_EXHAUSTED when none is free, exact however many submissions race (a refused submission
 *    gives its key up again);
 * 4. the job, its QUEUED event (sequence 1) and a ticket that makes it due are written.
 */
export function createJobSubmission(deps: {
  store: JobsStore;
  registry: Pick<ProviderRegistry, "resolve">;
  limits: QueryLimits;
  audit: AuditRecorder;
  maxUnfinishedPerUser: number;
  onSubmitted: (jobId: string) => void;
  now?: () => Date;
}) {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());

  const takePlace = async (userId: string, jobId: string): Promise<number> => {
    for (let round = 0; round < 3; round++) {
      const slots = await store.slotsOf(userId);
      if (slots.length >= deps.maxUnfinishedPerUser) {
        if (round > 0 || !(await freeStalePlaces(userId, slots))) break;
        continue;
      }
      const used = new Set(slots.map((s) => s.slot));
      // Free places in a random order, so that concurrent submissions rarely try the same one.
      const free = Array.from({ length: deps.maxUnfinishedPerUser }, (_, i) => i).filter((i) => !used.has(i));
      for (let i = free.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        [free[i], free[j]] = [free[j]!, free[i]!];
      }
      for (const slot of free) if (await store.insertSlot({ userId, slot, jobId, takenAt: now() })) return slot;
    }
    throw new DomainError("resource_exhausted", `you have ${deps.maxUnfinishedPerUser} unfinished jobs, the most allowed: wait for some to finish or cancel them`);
  };

  /** Places whose job ended (its outcome is decided) or never appeared are given back; true if any was. */
  const freeStalePlaces = async (userId: string, slots: Awaited<ReturnType<JobsStore["slotsOf"]>>): Promise<boolean> => {
    const ids = slots.map((s) => s.jobId);
    const [jobs, outcomes] = await Promise.all([store.getJobs(ids), store.getOutcomes(ids)]);
    const existing = new Set(jobs.map((j) => j._id));
    const ended = new Set(outcomes.map((o: JobOutcome) => o.jobId));
    let freed = false;
    for (const s of slots) {
      if (ended.has(s.jobId) || (!existing.has(s.jobId) && now().getTime() - s.takenAt.getTime() > ORPHAN_AFTER_MS)) {
        await store.deleteSlot(userId, s.slot);
        freed = true;
      }
    }
    return freed;
  };

  /**
   * The job of a key another submission holds: ALREADY_EXISTS for other parameters; otherwise the job,
   * waiting while its submission is still writing it. "gone" when that submission gave the key up (it
   * was refused, say over the cap) or died before writing the job.
   */
  const existingJob = async (record: IdempotencyRecord, parametersHash: string): Promise<JobRecord | "gone"> => {
    if (record.parametersHash !== parametersHash) throw new DomainError("already_exists", "the idempotency key was used with different parameters within the last 24 hours");
    const deadline = Date.now() + CREATION_WAIT_MS;
    for (;;) {
      const job = await store.getJob(record.jobId);
      if (job) return job;
      if (now().getTime() - record.createdAt.getTime() > ORPHAN_AFTER_MS) return "gone";
      const still = (await store.idempotencyGenerations(record.userId, record.keyHash)).some((r) => r.generation === record.generation);
      if (!still) return "gone";
      if (Date.now() > deadline) throw new DomainError("unavailable", "a submission with this idempotency key is still being created; retry");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  return {
    async submit(ctx: RequestContext, input: SubmitInput): Promise<{ job: JobRecord; deduplicated: boolean }> {
      // 1. Everything that can be refused is refused before anything is written.
      if (input.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_CHARS) throw new DomainError("invalid_argument", `idempotency_key may have at most ${MAX_IDEMPOTENCY_KEY_CHARS} characters`);
      const query = validateQuery(input, deps.limits);
      const { provider, model } = deps.registry.resolve(input.provider, input.model);
      const userId = ctx.principal.userId;
      const parametersHash = hashParameters(input);
      const keyHash = input.idempotencyKey === "" ? undefined : createHash("sha256").update(input.idempotencyKey).digest("base64url");

      const at = now();
      const jobId = newJobId(userId, at);
      // 2. A key used within 24 hours answers with its job; otherwise this submission takes the key's
      // next generation — of concurrent submissions exactly one does, the others answer with its job.
      let key: IdempotencyRecord | undefined;
      for (let round = 0; keyHash && !key; round++) {
        if (round === 5) throw new DomainError("unavailable", "submissions with this idempotency key keep failing; retry");
        const newest = (await store.idempotencyGenerations(userId, keyHash)).at(-1);
        if (newest && now().getTime() - newest.createdAt.getTime() < IDEMPOTENCY_WINDOW_MS) {
          const job = await existingJob(newest, parametersHash);
          if (job !== "gone") return { job, deduplicated: true };
          if (now().getTime() - newest.createdAt.getTime() <= ORPHAN_AFTER_MS) continue;
        }
        const record: IdempotencyRecord = { userId, keyHash, generation: (newest?.generation ?? 0) + 1, jobId, parametersHash, createdAt: at };
        if (await store.insertIdempotency(record)) key = record;
      }
      // 3. A place among the user's unfinished jobs; refused, the key is given up again.
      try {
        await takePlace(userId, jobId);
      } catch (error) {
        if (key) await store.deleteIdempotency(key);
        throw error;
      }
      // 4. The job, its first event and its ticket.
      const job: JobRecord = {
        _id: jobId,
        ownerUserId: userId,
        ...(ctx.principal.kind === "api_key" ? { apiKeyId: ctx.principal.id } : {}),
        submitter: submitterOf(ctx),
        request: storedQuery(input),
        provider: provider.name,
        model,
        maxTokens: query.maxTokens,
        ...(input.idempotencyKey ? { idempotencyKey: input.idempotencyKey } : {}),
        createdAt: at,
        status: "queued",
        attempt: 0,
        progressPercent: 0,
        outputText: "",
        lastEventSequence: 1,
      };
      // The ticket last: a run that claims it finds the job and its first event in place.
      await Promise.all([store.insertJob(job), store.insertEvents([{ jobId, sequence: 1, time: at, kind: "queued", attempt: 0 }])]);
      await store.insertTicket({ id: ticketId(at, jobId, 1), jobId, attempt: 1, dueAt: at, kind: "run", failures: 0 });
      deps.audit.record({
        type: "job.submit",
        outcome: "success",
        ...auditedCaller(ctx),
        target: { kind: "job", id: jobId },

        metadata: { user_id: userId, provider: provider.name, model, max_tokens: query.maxTokens, idempotency_key: keyHash !== undefined },
      });
      deps.onSubmitted(jobId);
      return { job, deduplicated: false };
    },
  };
}

export type JobSubmission = ReturnType<typeof createJobSubmission>;

/** The query without undefined fields (stored as it came, so a run sends exactly what was asked). */
function storedQuery(input: QueryInput): QueryInput {
  return {
    provider: input.provider,
    model: input.model,
    prompt: input.prompt,
    messages: input.messages.map((m) => ({ role: m.role, content: m.content })),
    systemPrompt: input.systemPrompt,
    ...(input.maxTokens !== undefined ? { maxTokens: input.maxTokens } : {}),
    ...(input.temperature !== undefined ? { temperature: input.temperature } : {}),
  };
}

/** "The same parameters": the request's fields as sent, in a fixed order. */
function hashParameters(input: QueryInput): string {
  const canonical = JSON.stringify([input.provider, input.model, input.prompt, input.messages.map((m) => [m.role, m.content]), input.systemPrompt, input.maxTokens ?? null, input.temperature ?? null]);
  return createHash("sha256").update(canonical).digest("base64url");
}
