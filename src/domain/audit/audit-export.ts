import type { RequestContext } from "../request-context.ts";
import { describeAuditFilter, validateAuditFilter, type AuditFilterInput } from "./audit-filter.ts";
import type { AuditLog } from "./audit-log.ts";
import type { AuditLogStore } from "./audit-log-store.ts";
import { MANIFEST_TYP } from "./audit-signatures.ts";
import { createChunker, createExportWriter, type ExportFormat, type JsonOfEvent } from "./export-writer.ts";

export type { ExportFormat, ExportManifest, JsonOfEvent } from "./export-writer.ts";

/** What ExportAuditEvents asks for, already converted from the request. */
export interface ExportRequest {
  readonly format: ExportFormat;
  readonly filter: AuditFilterInput;
  readonly order: "asc" | "desc";
  /** The JSON form of one event (JSONL lines). */
  readonly jsonOf: JsonOfEvent;
}

/**
 * ExportAuditEvents: the events matching a filter up to the head pinned when the export began, as
 * chunks of a file (JSONL or CSV) that closes with a manifest signed by the server. `verifyExportFile`
 * (export-verification.ts) checks such a file offline.
 */
export interface AuditExport {
  /**
   * The file, in chunks of at most 64 KiB (never splitting a UTF-8 character). Everything that can be
   * refused is refused before the first chunk: an error after it would leave a truncated file. Ends
   * early, without the manifest, when `signal` aborts.
   */
  chunks(ctx: RequestContext, request: ExportRequest, signal: AbortSignal): AsyncGenerator<Uint8Array>;
}

const EXPORT_PAGE = 1000;
const CHUNK_BYTES = 64 * 1024;

export function createAuditExport(deps: { log: AuditLog; store: AuditLogStore; now?: () => Date }): AuditExport {
  const now = deps.now ?? (() => new Date());
  return {
    async *chunks(ctx, request, signal) {
      // 1. Validate everything before the first byte.
      const filter = validateAuditFilter(request.filter);
      const { format, order } = request;
      // 2. Audit the export, then pin the head: the export covers the log as of now, whatever arrives later.
      await deps.log.noteExport(ctx, filter, format);
      const head = await deps.log.signHead();
      const writer = createExportWriter(format, request.jsonOf);
      const scope = describeAuditFilter(filter);
      const complete = Object.keys(scope).length === 0;
      const chunker = createChunker(CHUNK_BYTES);
      chunker.add(writer.header());
      // 3. Events page by page up to the pinned head, then the signed manifest.
      let cursor: number | undefined = order === "asc" ? undefined : head.seq + 1;
      let unsealed: number | undefined;
      for (;;) {
        if (signal.aborted) return;
        const rows = await deps.store.query(filter, { order, cursorSeq: cursor, limit: EXPORT_PAGE });
        const inRange = rows.filter((r) => r.seq <= head.seq);
        for (const record of inRange) {
          if (unsealed === undefined && !deps.log.sealed(record)) unsealed = record.seq;
          chunker.add(writer.line(record));
        }
        yield* chunker.take(false);
        if (rows.length < EXPORT_PAGE || inRange.length < rows.length) break;
        cursor = rows.at(-1)!.seq;
      }
      const manifest = writer.manifest({
        order,
        complete,
        headSequence: head.seq,
        headHash: head.hash,
        filter: scope,
        exportedAt: now().toISOString(),
        ...(unsealed === undefined ? {} : { unsealedSequence: unsealed }),
      });
      chunker.add(writer.closing(await deps.log.signStatement(MANIFEST_TYP, { ...manifest })));
      yield* chunker.take(true);
    },
  };
}
