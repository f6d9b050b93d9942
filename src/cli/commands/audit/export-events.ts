import { open, rename, unlink } from "node:fs/promises";
import { AuditExportFormat, AuditService } from "../../../../gen/portcullis/v1/audit_pb.js";
import { SortOrder } from "../../../../gen/portcullis/v1/common_pb.js";
import { CommandError } from "../../command-error.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { FILTER_HELP, FILTER_OPTIONS, parseFilter, parseOrder } from "./audit-arguments.ts";

const USAGE = `Usage: portcullis audit export --format jsonl|csv [filters] [--order asc|desc] [--output FILE]

Exports matching audit events (needs audit.read), oldest first by default, each with its sequence number
and hash, closed by a manifest the server signs. "portcullis audit verify FILE" checks a JSONL export
offline. Exporting is itself audited.

Options:
  --format FORMAT    jsonl (JSON Lines) or csv (RFC 4180; formula-like cells neutralised).
  --order ORDER      asc (the default) or desc.
  --output FILE      Write to FILE (created with mode 0600, replaced only when complete) instead of stdout.
${FILTER_HELP}
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, ...FILTER_OPTIONS, format: { type: "string" }, order: { type: "string" }, output: { type: "string" } } as const;

/** `audit export`; see {@link USAGE}. */
export const exportEventsCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  const format = { jsonl: AuditExportFormat.JSONL, csv: AuditExportFormat.CSV }[values.format?.toLowerCase() ?? ""];
  if (format === undefined) throw new CommandError("--format must be jsonl or csv", 2);
  const filter = parseFilter(values);
  const order = parseOrder(values.order, SortOrder.ASCENDING);
  const audit = (await connect()).client(AuditService);
  const stream = audit.exportAuditEvents({ format, filter, order }, { timeoutMs: 0 });
  if (values.output === undefined) {
    for await (const chunk of stream) await writeOutBytes(chunk.data);
    return 0;
  }
  // A partial export must never look like a complete one: write aside, rename when done.
  const partial = `${values.output}.partial`;
  const file = await open(partial, "w", 0o600);
  try {
    for await (const chunk of stream) await file.write(chunk.data);
    await file.sync();
  } catch (err) {
    await file.close();
    await unlink(partial).catch(() => undefined);
    throw err;
  }
  await file.close();
  await rename(partial, values.output);
  return 0;
});

function writeOutBytes(data: Uint8Array): Promise<void> {
  return data.length === 0 ? Promise.resolve() : writeOut(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
}
