import type { RequestContext } from "../request-context.ts";
import type { JobRecord, JobSubmitter } from "./job-record.ts";

/** What a job keeps of its submitter's call, so that a run on any instance acts for them. */
export function submitterOf(ctx: RequestContext): JobSubmitter {
  const p = ctx.principal;
  return { kind: p.kind, id: p.id, userId: p.userId, displayName: p.displayName, role: p.role, ip: ctx.client.ip, userAgent: ctx.client.userAgent };
}

/**
 * The context a run of a job acts in: the submitter (a user, or an API key for its owner: budgets,
 * usage and the `ai.query` audit event are theirs), from the submitter's address, under a request id
 * that names the job and the run. It carries no permissions: a run calls no access-checked action.
 */
export function runContextOf(job: JobRecord, attempt: number): RequestContext {
  const s = job.submitter;
  return {
    principal: {
      kind: s.kind,
      id: s.id,
      userId: s.userId,
      displayName: s.displayName,
      role: s.role,
      permissions: new Set(),
      method: s.kind === "api_key" ? "api_key" : "access_token",
      sessionId: undefined,
    },
    client: { ip: s.ip, userAgent: s.userAgent },
    requestId: `job:${job._id}:${attempt}`,
  };
}
