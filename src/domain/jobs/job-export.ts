import { createHash, type Hash } from "node:crypto";
import { Zip, ZipDeflate } from "fflate";
import { auditedCaller } from "../audit/audit-caller.ts";
import type { AuditRecorder } from "../audit/audit-recorder.ts";
import { csvRow } from "../audit/csv.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import { isTerminal, type JobRecord, type JobStatus } from "./job-record.ts";
import { withOutcome } from "./job-service.ts";
import type { JobListQuery, JobsStore } from "./jobs-store.ts";

export type JobExportFormat = "json" | "jsonl" | "csv" | "zip";

/** The protobuf JSON form of a job (the handler knows the generated schema; the domain does not). */
export type JobJson = (job: JobRecord) => string;

export interface JobExportRequest {
  readonly format: JobExportFormat;
  readonly status: JobStatus | undefined;
  readonly createdFrom: Date | undefined;
  readonly createdTo: Date | undefined;
  readonly includeOutput: boolean;
  readonly jsonOf: JobJson;
}

/**
 * Bytes written to a temporary place and read back once: the ZIP export writes jobs.csv while it
 * streams jobs.json, so that both files hold the same jobs in one pass over the database, with memory
 * that stays flat however many jobs there are.
 */
export interface ExportSpool {
  write(bytes: Uint8Array): Promise<void>;
  /** Everything written, in order (call once, after the last write). */
  read(): AsyncIterable<Uint8Array>;
  dispose(): Promise<void>;
}

export const JOB_CSV_COLUMNS = [
  "id",
  "status",
  "owner_user_id",
  "api_key_id",
  "provider",
  "model",
  "idempotency_key",
  "attempt",
  "progress_percent",
  "input_tokens",
  "output_tokens",
  "total_tokens",
  "finish_reason",
  "error_message",
  "created_at",
  "started_at",
  "finished_at",
  "last_event_sequence",
  "output_text",
] as const;

const CHUNK_BYTES = 64 * 1024;
const PAGE = 200;
const CONTENT_TYPES: Readonly<Record<JobExportFormat, string>> = { json: "application/json", jsonl: "application/x-ndjson", csv: "text/csv; charset=utf-8", zip: "application/zip" };

/**
 * ExportJobs: the caller's jobs matching the filter, newest first, submitted before the export began,
 * as one file in chunks of at most 64 KiB. Everything that can be refused is refused before the first
 * chunk (an error later would leave a truncated file): the format, the time range, and more matching jobs
 * than `maxJobs`. Jobs are read a page at a time and each is written as it is read, so memory stays flat.
 */
export function createJobExport(deps: { store: JobsStore; audit: AuditRecorder; maxJobs: number; spool: () => Promise<ExportSpool>; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  return {
    async open(ctx: RequestContext, request: JobExportRequest, signal: AbortSignal): Promise<{ contentType: string; filename: string; chunks: AsyncGenerator<Uint8Array> }> {
      const at = now();
      if (request.createdFrom && request.createdTo && request.createdFrom.getTime() > request.createdTo.getTime())
        throw new DomainError("invalid_argument", "created.start_time is after created.end_time");
      const end = request.createdTo && request.createdTo.getTime() < at.getTime() ? request.createdTo : at;
      const statuses: JobStatus[] | undefined = request.status === undefined ? undefined : isTerminal(request.status) ? [request.status, "queued", "running"] : [request.status];
      const query: Omit<JobListQuery, "limit"> = {
        scope: { ownerUserId: ctx.principal.userId },
        ...(statuses ? { statuses } : {}),
        ...(request.createdFrom ? { createdFrom: request.createdFrom } : {}),
        createdTo: end,
      };
      const matching = await deps.store.countJobs(query);
      if (matching > deps.maxJobs) throw new DomainError("resource_exhausted", `${matching} jobs match; an export holds at most ${deps.maxJobs}: narrow the status or time range`);
      deps.audit.record({
        type: "job.export",
        outcome: "success",
        ...auditedCaller(ctx),

        metadata: { user_id: ctx.principal.userId, format: request.format, status: request.status ?? "any", include_output: request.includeOutput, matching },
      });
      const stamp = at
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");
      return {
        contentType: CONTENT_TYPES[request.format],
        filename: `jobs-${stamp}.${request.format}`,
        chunks: rechunk(write(request, jobsOf(query, request, signal), at)),
      };
    },
  };

  async function* jobsOf(query: Omit<JobListQuery, "limit">, request: JobExportRequest, signal: AbortSignal): AsyncGenerator<JobRecord> {
    let count = 0;
    for await (const stored of deps.store.iterateJobs(query, PAGE)) {
      if (signal.aborted || count >= deps.maxJobs) return;
      const job = isTerminal(stored.status) ? stored : withOutcome(stored, await deps.store.getOutcome(stored._id));
      if (request.status !== undefined && job.status !== request.status) continue;
      count++;
      yield request.includeOutput ? job : { ...job, outputText: "" };
    }
  }

  async function* write(request: JobExportRequest, jobs: AsyncGenerator<JobRecord>, at: Date): AsyncGenerator<Uint8Array> {
    const text = (s: string) => Buffer.from(s, "utf8");
    switch (request.format) {
      case "jsonl":
        for await (const job of jobs) yield text(`${request.jsonOf(job)}\n`);
        return;
      case "csv":
        yield text(csvRow(JOB_CSV_COLUMNS));
        for await (const job of jobs) yield text(csvRow(csvCells(job)));
        return;
      case "json":
        yield* jsonArray(jobs, request.jsonOf);
        return;
      case "zip":
        yield* zipOf(request, jobs, at);
        return;
    }
  }

  async function* zipOf(request: JobExportRequest, jobs: AsyncGenerator<JobRecord>, at: Date): AsyncGenerator<Uint8Array> {
    const out: Uint8Array[] = [];
    let failure: Error | null = null;
    const zip = new Zip((error, data) => {
      if (error) failure = error;
      else out.push(data);
    });
    const drain = function* () {
      if (failure) throw failure;
      yield* out.splice(0);
    };
    const spool = await deps.spool();
    try {
      const files: Array<{ name: string; bytes: number; sha256: string }> = [];
      const byStatus: Record<string, number> = {};
      let total = 0;
      // jobs.json streams into the archive; jobs.csv goes to the spool row by row as the same jobs pass.
      const json = hashed("jobs.json", at, zip);
      const csv = { hash: createHash("sha256"), bytes: 0 };
      const toCsv = async (bytes: Uint8Array) => {
        csv.hash.update(bytes);
        csv.bytes += bytes.length;
        await spool.write(bytes);
      };
      await toCsv(Buffer.from(csvRow(JOB_CSV_COLUMNS)));
      const counted = async function* () {
        for await (const job of jobs) {
          total++;
          byStatus[job.status] = (byStatus[job.status] ?? 0) + 1;
          await toCsv(Buffer.from(csvRow(csvCells(job))));
          yield job;
        }
      };
      for await (const bytes of jsonArray(counted(), request.jsonOf)) {
        json.push(bytes);
        yield* drain();
      }
      files.push(json.end());
      yield* drain();
      const csvEntry = entry("jobs.csv", at, zip);
      for await (const bytes of spool.read()) {
        csvEntry.push(bytes, false);
        yield* drain();
      }
      csvEntry.push(new Uint8Array(0), true);
      files.push({ name: "jobs.csv", bytes: csv.bytes, sha256: csv.hash.digest("hex") });
      const manifest = {
        format: "portcullis.jobs-export",
        version: 1,
        exported_at: at.toISOString(),
        filter: {
          status: request.status ?? "any",
          created_from: request.createdFrom?.toISOString() ?? null,
          created_to: request.createdTo?.toISOString() ?? null,
          include_output: request.includeOutput,
        },
        jobs: total,
        jobs_by_status: byStatus,
        files,
      };
      entry("manifest.json", at, zip).push(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), true);
      zip.end();
      yield* drain();
    } finally {
      await spool.dispose();
    }
  }
}

export type JobExport = ReturnType<typeof createJobExport>;

function entry(name: string, at: Date, zip: Zip): ZipDeflate {
  const file = new ZipDeflate(name, { level: 6 });
  file.mtime = at;
  zip.add(file);
  return file;
}

/** A ZIP entry that also hashes and counts what goes into it. */
function hashed(name: string, at: Date, zip: Zip) {
  const file = entry(name, at, zip);
  const hash: Hash = createHash("sha256");
  let bytes = 0;
  return {
    push(data: Uint8Array) {
      hash.update(data);
      bytes += data.length;
      file.push(data, false);
    },
    end() {
      file.push(new Uint8Array(0), true);
      return { name, bytes, sha256: hash.digest("hex") };
    },
  };
}

async function* jsonArray(jobs: AsyncIterable<JobRecord>, jsonOf: JobJson): AsyncGenerator<Uint8Array> {
  let first = true;
  yield Buffer.from("[");
  for await (const job of jobs) {
    yield Buffer.from(`${first ? "\n" : ",\n"}${jsonOf(job)}`);
    first = false;
  }
  yield Buffer.from(first ? "]\n" : "\n]\n");
}

function csvCells(job: JobRecord): string[] {
  const iso = (d: Date | undefined) => d?.toISOString() ?? "";
  const input = job.usage?.inputTokens;
  const output = job.usage?.outputTokens;
  return [
    job._id,
    job.status,
    job.ownerUserId,
    job.apiKeyId ?? "",
    job.provider,
    job.model,
    job.idempotencyKey ?? "",
    String(job.attempt),
    String(job.progressPercent),
    input === undefined ? "" : String(input),
    output === undefined ? "" : String(output),
    input === undefined || output === undefined ? "" : String(input + output),
    job.finishReason ?? "",
    job.errorMessage ?? "",
    iso(job.createdAt),
    iso(job.startedAt),
    iso(job.finishedAt),
    String(job.lastEventSequence),
    job.outputText,
  ];
}

/** Re-cuts a byte stream into messages of at most 64 KiB, joining small pieces. */
async function* rechunk(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [];
  let size = 0;
  for await (const piece of source) {
    let rest = piece;
    while (size + rest.length >= CHUNK_BYTES) {
      const take = CHUNK_BYTES - size;
      parts.push(rest.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      size = 0;
      rest = rest.subarray(take);
    }
    if (rest.length > 0) {
      parts.push(Buffer.from(rest)); // a copy: the producer may reuse its buffer
      size += rest.length;
    }
  }
  if (size > 0) yield Buffer.concat(parts);
}
