import { AuditEventSchema, AuditService, QueryAuditEventsResponseSchema, type AuditEvent } from "../../../../gen/portcullis/v1/audit_pb.js";
import { SortOrder } from "../../../../gen/portcullis/v1/common_pb.js";
import { create, toJson } from "@bufbuild/protobuf";
import { formatTable } from "../../output/table.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { FILTER_HELP, FILTER_OPTIONS, parseFilter, parseOrder, parsePositive } from "./audit-arguments.ts";
import { EVENT_HEADERS, eventRow } from "./event-display.ts";

const USAGE = `Usage: portcullis audit query [filters] [--limit N] [--order asc|desc] [--json]

Searches the audit log (needs audit.read), newest first unless --order asc, following pages until
--limit events (default 100) are shown. Reading the log is itself audited.

Options:
  --limit N          Show at most N events (default 100, at most 100000).
  --order ORDER      asc (oldest first) or desc (newest first, the default).
  --json             Print {"events": [...]} in the API's JSON, hashes included.
${FILTER_HELP}
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, ...FILTER_OPTIONS, limit: { type: "string" }, order: { type: "string" }, json: { type: "boolean" } } as const;
const PAGE_SIZE = 1_000;

/** `audit query`; see {@link USAGE}. */
export const queryEventsCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  const filter = parseFilter(values);
  const limit = parsePositive(values.limit, "--limit", 100, 100_000);
  const order = parseOrder(values.order, SortOrder.DESCENDING);
  const audit = (await connect()).client(AuditService);
  const events: AuditEvent[] = [];
  let pageToken = "";
  do {
    const page = await audit.queryAuditEvents({ filter, order, pageSize: Math.min(PAGE_SIZE, limit - events.length), pageToken });
    events.push(...page.events);
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && events.length < limit);
  if (values.json) {
    const response = create(QueryAuditEventsResponseSchema, { events, nextPageToken: "" });
    await writeOut(`${JSON.stringify({ events: response.events.map((e) => toJson(AuditEventSchema, e)) }, null, 2)}\n`);
    return 0;
  }
  if (events.length === 0) {
    await writeOut("No matching events.\n");
    return 0;
  }
  await writeOut(formatTable(EVENT_HEADERS, events.map(eventRow)));
  return 0;
});
