import { toJson } from "@bufbuild/protobuf";
import { AuditEventSchema, AuditService } from "../../../../gen/portcullis/v1/audit_pb.js";
import { CommandError } from "../../command-error.ts";
import { printable } from "../../output/terminal-text.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { FILTER_HELP, FILTER_OPTIONS, parseFilter, parsePositive } from "./audit-arguments.ts";
import { eventRow } from "./event-display.ts";

const USAGE = `Usage: portcullis audit tail [filters] [--after SEQ] [--count N] [--json]

Follows the audit log live (needs audit.read): prints matching events as they are recorded, on any
instance, until interrupted. With --after, first replays the events after that sequence number — pass
the last one you saw to resume without losing or repeating any.

Options:
  --after SEQ        Replay events after this sequence (0: the whole log) before following.
  --count N          Stop after N events.
  --json             One event per line in the API's JSON (JSON Lines), hashes included.
${FILTER_HELP}
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, ...FILTER_OPTIONS, after: { type: "string" }, count: { type: "string" }, json: { type: "boolean" } } as const;

/** `audit tail`; see {@link USAGE}. */
export const tailEventsCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  const filter = parseFilter(values);
  if (values.after !== undefined && !/^\d{1,19}$/.test(values.after.trim())) throw new CommandError("--after must be a sequence number", 2);
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : parsePositive(values.count, "--count", 1, 1_000_000_000);
  const audit = (await connect()).client(AuditService);
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once("SIGINT", interrupt);
  let shown = 0;
  try {
    // A live tail has no deadline (timeoutMs 0 lifts the connection's default).
    const stream = audit.watchAuditEvents({ filter, ...(values.after !== undefined ? { afterSequence: BigInt(values.after.trim()) } : {}) }, { signal: stop.signal, timeoutMs: 0 });
    for await (const message of stream) {
      if (message.payload.case !== "event") continue;
      const event = message.payload.value;
      await writeOut(values.json ? `${JSON.stringify(toJson(AuditEventSchema, event))}\n` : `${eventRow(event).map(printable).join("  ")}\n`);
      if (++shown >= count) break;
    }
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  } finally {
    process.off("SIGINT", interrupt);
    stop.abort();
  }
  return 0;
});
