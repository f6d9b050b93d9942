import { createHash } from "node:crypto";
import type { JWK } from "jose";
import { chainHash, isChainHash, type HashableAuditEvent } from "./audit-chain.ts";
import type { AuditActor, AuditOutcome } from "./audit-event.ts";
import { MANIFEST_TYP, verifyStatement } from "./audit-signatures.ts";
import type { ChainBreakReason } from "./chain-check.ts";
import { CSV_COLUMNS, CSV_MANIFEST_MARKER, LEGACY_CSV_COLUMNS, parseCsv, restoreCell } from "./csv.ts";

/** The verdict on an export file. */
export type ExportVerdict =
  | { readonly ok: true; readonly count: number; readonly firstSequence: number; readonly lastSequence: number; readonly kid: string; readonly format: "jsonl" | "csv" }
  | { readonly ok: false; readonly reason: ChainBreakReason | "manifest"; readonly sequence?: number | undefined; readonly line?: number | undefined; readonly detail: string };

interface ExportEntry {
  readonly line: number;
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly event: HashableAuditEvent;
}

const OUTCOMES: Readonly<Record<string, AuditOutcome>> = {
  AUDIT_OUTCOME_SUCCESS: "success",
  AUDIT_OUTCOME_FAILURE: "failure",
  AUDIT_OUTCOME_DENIED: "denied",
  AUDIT_OUTCOME_ERROR: "error",
};
const KINDS: Readonly<Record<string, AuditActor["kind"]>> = {
  PRINCIPAL_KIND_USER: "user",
  PRINCIPAL_KIND_API_KEY: "api_key",
  PRINCIPAL_KIND_ANONYMOUS: "anonymous",
  PRINCIPAL_KIND_SYSTEM: "system",
};
const DOMAIN_OUTCOMES = new Set<string>(Object.values(OUTCOMES));
const DOMAIN_KINDS = new Set<string>(Object.values(KINDS));

class Altered extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}

/**
 * Checks an ExportAuditEvents file offline, with nothing but the gateway's public keys: the closing
 * manifest's signature, every event's hash over its own content and `prevHash`, the links between
 * neighbouring sequence numbers, the order, gaps (in an unfiltered export), and the manifest's count,
 * first and last sequence and digest. Names the first sequence (and line) where the file was altered.
 */
export async function verifyExportFile(text: string, keys: readonly JWK[]): Promise<ExportVerdict> {
  const csv = text.startsWith(`${CSV_COLUMNS[0]},`);
  let entries: ExportEntry[];
  let manifestJws: string | undefined;
  let manifestLine = 0;
  try {
    ({ entries, manifestJws, manifestLine } = csv ? parseCsvExport(text) : parseJsonlExport(text));
  } catch (error) {
    if (error instanceof Altered) return { ok: false, reason: "modified", line: error.line, detail: error.message };
    throw error;
  }
  if (manifestJws === undefined) return { ok: false, reason: "manifest", detail: "the signed manifest is missing: the file was truncated or its end altered" };
  const verified = await verifyStatement(manifestJws, MANIFEST_TYP, keys);
  if (!verified.ok) return { ok: false, reason: "manifest", line: manifestLine, detail: `manifest: ${verified.problem}` };
  const manifest = verified.statement;

  // 1. Each event on its own, then against its neighbour in the file.
  const bySeqHash = new Map(entries.map((e) => [e.hash, e.seq]));
  const present = new Set(entries.map((e) => e.seq));
  const seen = new Map<string, number>();
  const ascending = manifest["order"] !== "desc";
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const at = { sequence: entry.seq, line: entry.line };
    if (chainHash(entry.prevHash, entry.event) !== entry.hash) return { ok: false, reason: "modified", ...at, detail: `event ${entry.seq} does not match its hash` };
    if (seen.has(entry.hash)) return { ok: false, reason: "inserted", ...at, detail: `event ${entry.seq} is a copy of event ${seen.get(entry.hash)}` };
    seen.set(entry.hash, entry.seq);
    const previous = entries[i - 1];
    if (!previous) continue;
    if (ascending ? entry.seq <= previous.seq : entry.seq >= previous.seq) return { ok: false, reason: "reordered", ...at, detail: `event ${entry.seq} is out of order after event ${previous.seq}` };
    const [older, newer] = ascending ? [previous, entry] : [entry, previous];
    // Times never decrease along the chain, so they don't between any two events of an export either.
    if (Date.parse(newer.event.time) < Date.parse(older.event.time)) {
      return { ok: false, reason: "reordered", sequence: newer.seq, line: newer.line, detail: `event ${newer.seq} is dated before event ${older.seq}` };
    }
    if (newer.seq === older.seq + 1 && newer.prevHash !== older.hash) {
      const other = bySeqHash.get(newer.prevHash);
      return other !== undefined
        ? { ok: false, reason: "reordered", sequence: newer.seq, line: newer.line, detail: `event ${newer.seq} follows event ${other} in the chain` }
        : { ok: false, reason: "inserted", sequence: newer.seq, line: newer.line, detail: `event ${newer.seq} does not link to event ${older.seq}` };
    }
    if (manifest["complete"] === true && Math.abs(entry.seq - previous.seq) !== 1) {
      const missing = ascending ? previous.seq + 1 : previous.seq - 1;
      if (present.has(missing)) return { ok: false, reason: "reordered", sequence: missing, line: entry.line, detail: `event ${missing} was moved from its place after event ${previous.seq}` };
      return { ok: false, reason: "deleted", sequence: missing, line: entry.line, detail: `event ${missing} is missing` };
    }
  }
  // 2. What the gateway saw when exporting: an event with valid hashes it never sealed was forged in the database.
  if (typeof manifest["unsealedSequence"] === "number") {
    const seq = manifest["unsealedSequence"];
    return {
      ok: false,
      reason: "inserted",
      sequence: seq,
      line: entries.find((e) => e.seq === seq)?.line,
      detail: `the gateway found event ${seq} unsealed when exporting: it was written or rewritten outside the gateway`,
    };
  }
  // 3. The manifest: nothing added or removed at either end, and exactly these events.
  const digest = createHash("sha256");
  for (const entry of entries) digest.update(`${entry.seq}:${entry.hash}\n`);
  const first = entries[0]?.seq ?? 0;
  const last = entries.at(-1)?.seq ?? 0;
  if (manifest["firstSequence"] !== first)
    return { ok: false, reason: "deleted", sequence: Number(manifest["firstSequence"]), detail: `the manifest says the export starts at ${String(manifest["firstSequence"])}, the file at ${first}` };
  if (manifest["lastSequence"] !== last)
    return { ok: false, reason: "deleted", sequence: Number(manifest["lastSequence"]), detail: `the manifest says the export ends at ${String(manifest["lastSequence"])}, the file at ${last}` };
  if (manifest["count"] !== entries.length) return { ok: false, reason: "deleted", detail: `the manifest counts ${String(manifest["count"])} events, the file holds ${entries.length}` };
  if (manifest["digest"] !== digest.digest("hex")) return { ok: false, reason: "inserted", detail: "the events differ from those the manifest lists" };
  if (manifest["format"] !== (csv ? "csv" : "jsonl")) return { ok: false, reason: "manifest", detail: "the manifest is for another format" };
  return { ok: true, count: entries.length, firstSequence: first, lastSequence: last, kid: verified.kid, format: csv ? "csv" : "jsonl" };
}

function parseJsonlExport(text: string) {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const entries: ExportEntry[] = [];
  let manifestJws: string | undefined;
  let manifestLine = 0;
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (manifestJws !== undefined) throw new Altered(line, `line ${line} follows the manifest`);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new Altered(line, `line ${line} is not valid JSON`);
    }
    const object = asObject(value, line);
    if (typeof object["manifest"] === "string" && Object.keys(object).length === 1) {
      manifestJws = object["manifest"];
      manifestLine = line;
      return;
    }
    entries.push(jsonEntry(object, line));
  });
  return { entries, manifestJws, manifestLine };
}

function jsonEntry(o: Record<string, unknown>, line: number): ExportEntry {
  const str = (key: string, from: Record<string, unknown> = o) => {
    const v = from[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw new Altered(line, `line ${line}: ${key} is not a string`);
    return v;
  };
  const actor = o["actor"] === undefined ? undefined : asObject(o["actor"], line);
  const target = o["target"] === undefined ? undefined : asObject(o["target"], line);
  const metadata = o["metadata"] === undefined ? undefined : asObject(o["metadata"], line);
  const outcome = OUTCOMES[str("outcome") ?? ""];
  const kind = actor ? KINDS[str("kind", actor) ?? ""] : undefined;
  if (!outcome || (actor && !kind)) throw new Altered(line, `line ${line}: unknown outcome or actor kind`);
  return {
    line,
    seq: sequenceOf(str("sequence"), line),
    prevHash: hashOf(str("prevHash"), line),
    hash: hashOf(str("hash"), line),
    event: {
      id: str("id") ?? "",
      time: timeOf(str("time"), line),
      type: str("type") ?? "",
      outcome,
      actor: actor && kind ? { kind, id: str("id", actor), display: str("displayName", actor), onBehalfOf: str("onBehalfOfUserId", actor) } : undefined,
      target: target ? { kind: str("kind", target) ?? "", id: str("id", target) ?? "" } : undefined,
      ip: str("ip"),
      userAgent: str("userAgent"),
      requestId: str("requestId"),
      method: str("method"),
      reason: str("reason"),
      metadata: metadata ? Object.fromEntries(Object.keys(metadata).map((k) => [k, str(k, metadata) ?? ""])) : undefined,
    },
  };
}

function parseCsvExport(text: string) {
  let rows: string[][];
  try {
    rows = parseCsv(text);
  } catch {
    throw new Altered(0, "the CSV is malformed (an unterminated quoted cell)");
  }
  const header = rows[0] ?? [];
  const columns = [CSV_COLUMNS, LEGACY_CSV_COLUMNS].find((known) => header.join(",") === known.join(","));
  if (!columns) throw new Altered(1, "the CSV header was altered");
  const entries: ExportEntry[] = [];
  let manifestJws: string | undefined;
  let manifestLine = 0;
  rows.slice(1).forEach((cells, index) => {
    const line = index + 2; // rows, counting the header as row 1
    if (manifestJws !== undefined) throw new Altered(line, `row ${line} follows the manifest`);
    if (cells[0] === CSV_MANIFEST_MARKER && cells.length === 2) {
      manifestJws = cells[1];
      manifestLine = line;
      return;
    }
    if (cells.length !== columns.length) throw new Altered(line, `row ${line} has ${cells.length} cells, not ${columns.length}`);
    const c = { actor_on_behalf_of_user_id: "", ...Object.fromEntries(columns.map((name, i) => [name, restoreCell(cells[i]!)])) } as Record<(typeof CSV_COLUMNS)[number], string>;
    if (!DOMAIN_OUTCOMES.has(c.outcome) || (c.actor_kind !== "" && !DOMAIN_KINDS.has(c.actor_kind))) throw new Altered(line, `row ${line}: unknown outcome or actor kind`);
    let metadata: Record<string, string> | undefined;
    if (c.metadata !== "") {
      try {
        const parsed = asObject(JSON.parse(c.metadata), line);
        metadata = Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
      } catch {
        throw new Altered(line, `row ${line}: metadata is not a JSON object`);
      }
    }
    entries.push({
      line,
      seq: sequenceOf(c.sequence, line),
      prevHash: hashOf(c.prev_hash, line),
      hash: hashOf(c.hash, line),
      event: {
        id: c.id,
        time: timeOf(c.time, line),
        type: c.type,
        outcome: c.outcome as AuditOutcome,
        actor: c.actor_kind === "" ? undefined : { kind: c.actor_kind as AuditActor["kind"], id: c.actor_id, display: c.actor_display_name, onBehalfOf: c.actor_on_behalf_of_user_id },
        target: c.target_kind === "" && c.target_id === "" ? undefined : { kind: c.target_kind, id: c.target_id },
        ip: c.ip,
        userAgent: c.user_agent,
        requestId: c.request_id,
        method: c.method,
        reason: c.reason,
        metadata,
      },
    });
  });
  return { entries, manifestJws, manifestLine };
}

function asObject(value: unknown, line: number): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Altered(line, `line ${line} is not a JSON object`);
  return value as Record<string, unknown>;
}

function sequenceOf(raw: string | undefined, line: number): number {
  if (raw === undefined || !/^[1-9]\d{0,15}$/.test(raw)) throw new Altered(line, `line ${line}: bad sequence number`);
  return Number(raw);
}

function hashOf(raw: string | undefined, line: number): string {
  if (!isChainHash(raw)) throw new Altered(line, `line ${line}: bad hash`);
  return raw;
}

function timeOf(raw: string | undefined, line: number): string {
  const date = raw === undefined ? new Date(Number.NaN) : new Date(raw);
  if (Number.isNaN(date.getTime())) throw new Altered(line, `line ${line}: bad time`);
  return date.toISOString();
}
