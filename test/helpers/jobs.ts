import { type AiService, JobEventKind, JobStatus, type Job, type JobEvent } from "../../gen/portcullis/v1/ai_pb.js";
import type { FakeProvider } from "./fake-providers.ts";
import type { Client } from "@connectrpc/connect";

/** Polls `check` until it returns a value other than undefined (or throws after `timeoutMs`). */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, what = "condition", everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

const TERMINAL = new Set([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]);

/** Waits for a job to finish and returns it. */
export function finished(ai: Client<typeof AiService>, jobId: string, timeoutMs = 30_000): Promise<Job> {
  return eventually(
    async () => {
      const { job } = await ai.getJob({ jobId });
      return job && TERMINAL.has(job.status) ? job : undefined;
    },
    timeoutMs,
    `job ${jobId} to finish`,
    100,
  );
}

/** Every event of a job from `from`, read with WatchJob until it ends. */
export async function watchAll(ai: Client<typeof AiService>, jobId: string, from = 0n, signal?: AbortSignal): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const message of ai.watchJob({ jobId, fromSequence: from }, signal ? { signal } : {})) events.push(message.event!);
  return events;
}

/** The output a client following the contract's rule assembles from events: OUTPUT after the last RESTARTED. */
export function assembledOutput(events: readonly JobEvent[]): string {
  let text = "";
  for (const e of events) {
    if (e.kind === JobEventKind.RESTARTED) text = "";
    else if (e.kind === JobEventKind.OUTPUT) text += e.textDelta;
  }
  return text;
}

/** Completion requests the fake received for a job whose prompt is `prompt`. */
export function callsFor(fake: FakeProvider, prompt: string): number {
  return fake.completions().filter((r) => JSON.stringify(r.body?.["messages"] ?? []).includes(JSON.stringify(prompt).slice(1, -1))).length;
}
