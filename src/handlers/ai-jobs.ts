import { create, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { JobEventKind, JobExportFormat, JobSchema, JobStatus, type AiService, type JobEventSchema } from "../../gen/portcullis/v1/ai_pb.js";
import type { TokenUsage } from "../domain/ai/chat-provider.ts";
import { DomainError } from "../domain/errors.ts";
import type { JobExport, JobExportFormat as DomainFormat } from "../domain/jobs/job-export.ts";
import type { JobEvent, JobEventKind as DomainKind, JobRecord, JobStatus as DomainStatus } from "../domain/jobs/job-record.ts";
import type { JobService } from "../domain/jobs/job-service.ts";
import type { JobSubmission } from "../domain/jobs/job-submission.ts";
import { finishReasonToProto, queryInput } from "./ai-service.ts";
import { callerOf } from "./caller.ts";
import { timestamp } from "./converters.ts";

export interface JobHandlerDeps {
  readonly submission: JobSubmission;
  readonly service: JobService;
  readonly exporter: JobExport;
}

const STATUS_TO_PROTO: Readonly<Record<DomainStatus, JobStatus>> = {
  queued: JobStatus.QUEUED,
  running: JobStatus.RUNNING,
  succeeded: JobStatus.SUCCEEDED,
  failed: JobStatus.FAILED,
  cancelled: JobStatus.CANCELLED,
};
const KIND_TO_PROTO: Readonly<Record<DomainKind, JobEventKind>> = {
  queued: JobEventKind.QUEUED,
  started: JobEventKind.STARTED,
  progress: JobEventKind.PROGRESS,
  output: JobEventKind.OUTPUT,
  completed: JobEventKind.COMPLETED,
  failed: JobEventKind.FAILED,
  cancelled: JobEventKind.CANCELLED,
  restarted: JobEventKind.RESTARTED,
};
const FORMAT_FROM_PROTO: Readonly<Partial<Record<JobExportFormat, DomainFormat>>> = {
  [JobExportFormat.JSON]: "json",
  [JobExportFormat.JSONL]: "jsonl",
  [JobExportFormat.CSV]: "csv",
  [JobExportFormat.ZIP]: "zip",
};

/** A status filter: UNSPECIFIED is "any"; a number the enum does not have is INVALID_ARGUMENT. */
function statusFilter(status: JobStatus): DomainStatus | undefined {
  if (status === JobStatus.UNSPECIFIED) return undefined;
  const found = (Object.entries(STATUS_TO_PROTO) as Array<[DomainStatus, JobStatus]>).find(([, value]) => value === status);
  if (!found) throw new DomainError("invalid_argument", "status is not a known JobStatus");
  return found[0];
}

function usageOf(usage: TokenUsage | undefined) {
  if (!usage) return undefined;
  const clamp = (n: number) => Math.min(n, 2 ** 31 - 1);
  return { inputTokens: clamp(usage.inputTokens), outputTokens: clamp(usage.outputTokens), totalTokens: clamp(usage.inputTokens + usage.outputTokens) };
}

function jobMessage(job: JobRecord) {
  return {
    id: job._id,
    status: STATUS_TO_PROTO[job.status],
    ownerUserId: job.ownerUserId,
    apiKeyId: job.apiKeyId ?? "",
    provider: job.provider,
    model: job.model,
    idempotencyKey: job.idempotencyKey ?? "",
    progressPercent: job.progressPercent,
    outputText: job.outputText,
    usage: usageOf(job.usage),
    finishReason: job.finishReason ? finishReasonToProto(job.finishReason) : undefined,
    errorMessage: job.errorMessage ?? "",
    createdAt: timestamp(job.createdAt),
    startedAt: timestamp(job.startedAt),
    finishedAt: timestamp(job.finishedAt),
    lastEventSequence: BigInt(job.lastEventSequence),
    attempt: job.attempt,
  };
}

function eventMessage(event: JobEvent): MessageInitShape<typeof JobEventSchema> {
  return {
    sequence: BigInt(event.sequence),
    time: timestamp(event.time),
    kind: KIND_TO_PROTO[event.kind],
    jobId: event.jobId,
    progressPercent: event.progressPercent ?? 0,
    textDelta: event.textDelta ?? "",
    errorMessage: event.errorMessage ?? "",
    usage: usageOf(event.usage),
    finishReason: event.finishReason ? finishReasonToProto(event.finishReason) : undefined,
    attempt: event.attempt,
  };
}

function dateOf(value: Timestamp | undefined, field: string): Date | undefined {
  if (!value) return undefined;
  const date = timestampDate(value);
  if (Number.isNaN(date.getTime())) throw new DomainError("invalid_argument", `${field} is not a valid time`);
  return date;
}

/** A uint64 sequence from a request, as a number (anything beyond 2^53 is past every job's end). */
function sequenceOf(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** AiService's job RPCs: request → domain → response. */
export function createJobHandlers(deps: JobHandlerDeps): Partial<ServiceImpl<typeof AiService>> {
  const { submission, service, exporter } = deps;
  return {
    async submitJob(req, ctx) {
      const { job, deduplicated } = await submission.submit(callerOf(ctx), { ...queryInput(req), idempotencyKey: req.idempotencyKey });
      return { job: jobMessage(job), deduplicated };
    },

    async getJob(req, ctx) {
      return { job: jobMessage(await service.get(callerOf(ctx), req.jobId.trim())) };
    },

    async listJobs(req, ctx) {
      const page = await service.list(callerOf(ctx), { status: statusFilter(req.status), pageSize: req.pageSize, pageToken: req.pageToken, userId: req.userId.trim(), allUsers: req.allUsers });
      return { jobs: page.jobs.map(jobMessage), nextPageToken: page.nextPageToken };
    },

    async cancelJob(req, ctx) {
      return { job: jobMessage(await service.cancel(callerOf(ctx), req.jobId.trim())) };
    },

    async *watchJob(req, ctx) {
      for await (const event of service.watch(callerOf(ctx), req.jobId.trim(), sequenceOf(req.fromSequence), ctx.signal)) {
        yield { event: eventMessage(event) };
      }
    },

    async *exportJobs(req, ctx) {
      const format = FORMAT_FROM_PROTO[req.format];
      if (!format) throw new DomainError("invalid_argument", req.format === JobExportFormat.UNSPECIFIED ? "format is required" : "format is not a known JobExportFormat");
      const file = await exporter.open(
        callerOf(ctx),
        {
          format,
          status: statusFilter(req.status),
          createdFrom: dateOf(req.created?.startTime, "created.start_time"),
          createdTo: dateOf(req.created?.endTime, "created.end_time"),
          includeOutput: req.includeOutput,
          jsonOf: (job) => toJsonString(JobSchema, create(JobSchema, jobMessage(job))),
        },
        ctx.signal,
      );
      let first = true;
      for await (const data of file.chunks) {
        yield first ? { data, contentType: file.contentType, filename: file.filename } : { data };
        first = false;
      }
      if (first) yield { data: new Uint8Array(0), contentType: file.contentType, filename: file.filename };
    },
  };
}
