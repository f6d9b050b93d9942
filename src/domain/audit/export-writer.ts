import { createHash } from "node:crypto";
import type { SealedAuditRecord } from "./audit-chain.ts";
import { CSV_COLUMNS, CSV_MANIFEST_MARKER, csvRow } from "./csv.ts";

export type ExportFormat = "jsonl" | "csv";

/** What the closing manifest states, signed by the server: enough to detect any added, removed or altered line. */
export interface ExportManifest {
  readonly format: ExportFormat;
  readonly count: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
  readonly order: "asc" | "desc";
  /** Whether the export is the whole retained log in a sequence range (no filter): gaps are then deletions. */
  readonly complete: boolean;
  /** SHA-256 over `seq:hash\n` of every exported event, in file order. */
  readonly digest: string;
  readonly headSequence: number;
  readonly headHash: string;
  readonly filter: Record<string, string>;
  readonly exportedAt: string;
  /** The first exported event the gateway did not seal (written outside it, straight into the database); absent when all are sealed. */
  readonly unsealedSequence?: number;
}

/**
 * One event as one JSONL line's JSON value: the API's JSON form of AuditEvent, which only the handlers
 * know (the domain knows no protobuf), so they supply it.
 */
export type JsonOfEvent = (record: SealedAuditRecord) => unknown;

/** Formats events one line (JSONL) or row (CSV) at a time and keeps what the manifest needs. */
export function createExportWriter(format: ExportFormat, jsonOf: JsonOfEvent) {
  const digest = createHash("sha256");
  let count = 0;
  let first = 0;
  let last = 0;
  return {
    header(): string {
      return format === "csv" ? csvRow(CSV_COLUMNS) : "";
    },
    line(record: SealedAuditRecord): string {
      digest.update(`${record.seq}:${record.hash}\n`);
      if (count === 0) first = record.seq;
      last = record.seq;
      count += 1;
      if (format === "jsonl") return `${JSON.stringify(jsonOf(record))}\n`;
      return csvRow([
        String(record.seq),
        record._id,
        record.time.toISOString(),
        record.type,
        record.outcome,
        record.actor?.kind ?? "",
        record.actor?.id ?? "",
        record.actor?.display ?? "",
        record.target?.kind ?? "",
        record.target?.id ?? "",
        record.ip ?? "",
        record.userAgent ?? "",
        record.requestId ?? "",
        record.method ?? "",
        record.reason ?? "",
        record.metadata ? JSON.stringify(Object.fromEntries(Object.entries(record.metadata).map(([k, v]) => [k, String(v)]))) : "",
        record.prevHash,
        record.hash,
        record.actor?.onBehalfOf ?? "",
      ]);
    },
    manifest(rest: Omit<ExportManifest, "format" | "count" | "firstSequence" | "lastSequence" | "digest">): ExportManifest {
      return { format, count, firstSequence: first, lastSequence: last, digest: digest.digest("hex"), ...rest };
    },
    closing(jws: string): string {
      return format === "jsonl" ? `${JSON.stringify({ manifest: jws })}\n` : csvRow([CSV_MANIFEST_MARKER, jws]);
    },
  };
}

/** Cuts text into messages of at most `chunkBytes` bytes without splitting a UTF-8 character across them. */
export function createChunker(chunkBytes: number) {
  let parts: string[] = [];
  let size = 0;
  let carry = Buffer.alloc(0);
  return {
    add(text: string) {
      parts.push(text);
      size += text.length; // a lower bound of the byte length: enough to decide when to look closer
    },
    *take(force: boolean): Generator<Buffer> {
      if (!force && size + carry.length < chunkBytes) return;
      let bytes = Buffer.concat([carry, Buffer.from(parts.join(""))]);
      parts = [];
      size = 0;
      while (bytes.length >= chunkBytes || (force && bytes.length > 0)) {
        const chunk = bytes.subarray(0, chunkBytes);
        bytes = bytes.subarray(chunk.length);
        yield chunk;
      }
      carry = Buffer.from(bytes);
    },
  };
}
