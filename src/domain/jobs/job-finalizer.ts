import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { appendAfterLast, PositionTaken, type RunEventWriter } from "./job-event-writer.ts";
import type { TokenUsage } from "../ai/chat-provider.ts";
import type { JobEvent, JobOutcome, JobRecord } from "./job-record.ts";
import type { JobsStore } from "./jobs-store.ts";

const TERMINAL_KIND = { succeeded: "completed", failed: "failed", cancelled: "cancelled" } as const;
const AUDIT_OUTCOME = { succeeded: "success", failed: "error", cancelled: "failure" } as const;

/**
 * The OUTPUT text of a job's latest run, from its events: the text after the last RESTARTED event, up
 * to the terminal one — exactly the rule a watching client applies, so the record and the stream agree.
 */
export async function latestRunOutput(store: JobsStore, jobId: string): Promise<string> {
  let text = "";
  for (let from = 1; ; ) {
    const batch = await store.eventsFrom(jobId, from, 500);
    for (const event of batch) {
      if (event.kind === "restarted") text = "";
      else if (event.kind === "output") text += event.textDelta ?? "";
    }
    if (batch.length < 500) return text;
    from = batch.at(-1)!.sequence + 1;
  }
}

/**
 * Ends a job whose outcome is decided (the `job_outcomes` insert): writes the terminal event, the
 * record's final projection, frees the owner's unfinished-job place, and audits the end. Called only
 * by the holder of the job's latest claim — a run that ends, or whoever claimed the job after its run
 * died — so the projection has one writer. `run` is the live run, when there is one: its output is what
 * it wrote, and its terminal event goes at its own next position. Safe to repeat after a crash: an
 * existing terminal event is kept, and the audit event is written only by the writer of the terminal event.
 */
export async function finishJob(
  deps: { store: JobsStore; audit: AuditRecorder; onWritten?: (jobId: string, last: number) => void },
  job: JobRecord,
  outcome: JobOutcome,
  run?: { writer: RunEventWriter; attempt: number; usage?: TokenUsage | undefined },
): Promise<void> {
  const { store } = deps;
  const kind = TERMINAL_KIND[outcome.status];
  const event: Omit<JobEvent, "jobId" | "sequence" | "time" | "attempt"> = {
    kind,
    ...(outcome.status === "succeeded" ? { progressPercent: 100, usage: outcome.usage } : {}),
    ...(outcome.finishReason ? { finishReason: outcome.finishReason } : {}),
    ...(outcome.errorMessage ? { errorMessage: outcome.errorMessage } : {}),
  };
  let terminal: JobEvent | undefined;
  let written = false;
  let output: string | undefined;
  if (run) {
    try {
      run.writer.append(event);
      await run.writer.flush();
      terminal = { ...event, jobId: job._id, sequence: run.writer.lastSequence, time: outcome.at, attempt: run.attempt };
      written = true;
      output = run.writer.writtenOutput;
    } catch (error) {
      if (!(error instanceof PositionTaken)) throw error;
    }
  }
  if (!terminal) {
    const appended = await appendAfterLast(store, job._id, { ...event, jobId: job._id, time: new Date(), attempt: run?.attempt ?? job.attempt }, run?.writer.lastSequence ?? job.lastEventSequence);
    terminal = appended.event;
    written = appended.written;
    if (written) deps.onWritten?.(job._id, terminal.sequence);
  }
  output ??= await latestRunOutput(store, job._id);
  // A cancelled run's tokens, counted when its provider call was cut, belong on the record too.
  const usage = outcome.usage ?? run?.usage;
  await Promise.all([
    store.updateJob(job._id, {
      status: outcome.status,
      finishedAt: outcome.at,
      outputText: output,
      lastEventSequence: terminal.sequence,
      ...(outcome.status === "succeeded" ? { progressPercent: 100 } : {}),
      ...(usage ? { usage } : {}),
      ...(outcome.finishReason ? { finishReason: outcome.finishReason } : {}),
      ...(outcome.errorMessage ? { errorMessage: outcome.errorMessage } : {}),
    }),
    store.deleteSlotOf(job.ownerUserId, job._id),
  ]);
  // The job is finished for good: its events go to the archive and its claims away, so that the live
  // collections hold only unfinished jobs (see JobsStore.archiveEvents).
  const history = await store.eventsFrom(job._id, 1, terminal.sequence);
  if (history.length === terminal.sequence) await store.archiveEvents(job._id, history);
  await store.deleteClaims(job._id);
  if (written) {
    deps.audit.record({
      type: "job.finish",
      outcome: AUDIT_OUTCOME[outcome.status],
      actor: { kind: "system", display: "jobs" },
      target: { kind: "job", id: job._id },
      ...(outcome.errorMessage ? { reason: outcome.errorMessage } : {}),
      metadata: {
        user_id: job.ownerUserId,
        status: outcome.status,
        provider: job.provider,
        model: job.model,
        attempts: run?.attempt ?? job.attempt,
        input_tokens: usage?.inputTokens ?? 0,
        output_tokens: usage?.outputTokens ?? 0,
        output_chars: output.length,
      },
    });
  }
}
