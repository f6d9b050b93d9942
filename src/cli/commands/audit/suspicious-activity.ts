import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuditService, GetSuspiciousActivityResponseSchema, SuspiciousActivityKind } from "../../../../gen/portcullis/v1/audit_pb.js";
import { Severity } from "../../../../gen/portcullis/v1/common_pb.js";
import { enumLabel } from "../../output/enum-labels.ts";
import { formatJson } from "../../output/json-output.ts";
import { formatTable } from "../../output/table.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { parseSeverity, parseWhen } from "./audit-arguments.ts";

const USAGE = `Usage: portcullis audit suspicious [--since WHEN] [--until WHEN] [--min-severity S] [--json]

Analyses the audit log over a window (default: the last 24 hours; at most 30 days; needs audit.read) for
repeated failed logins per user and per IP, refresh-token reuse, MFA failures, bursts of denied calls,
an API key used from many IPs, logins from new IPs and emergency actions. Most severe first.

Options:
  --since WHEN       Start of the window: a duration back from now (24h, 7d) or an ISO time.
  --until WHEN       End of the window (default now).
  --min-severity S   Only findings at or above low, medium, high or critical.
  --json             Print the GetSuspiciousActivity response as JSON.
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, since: { type: "string" }, until: { type: "string" }, "min-severity": { type: "string" }, json: { type: "boolean" } } as const;

/** `audit suspicious`; see {@link USAGE}. */
export const suspiciousActivityCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  const request = {
    ...(values.since !== undefined ? { startTime: parseWhen(values.since, "--since") } : {}),
    ...(values.until !== undefined ? { endTime: parseWhen(values.until, "--until") } : {}),
    minSeverity: parseSeverity(values["min-severity"]),
  };
  const response = await (await connect()).client(AuditService).getSuspiciousActivity(request);
  if (values.json) {
    await writeOut(formatJson(GetSuspiciousActivityResponseSchema, response));
    return 0;
  }
  const window = `${response.startTime ? timestampDate(response.startTime).toISOString() : "?"} – ${response.endTime ? timestampDate(response.endTime).toISOString() : "?"}`;
  const header = `Analysed ${response.eventsAnalyzed} events, ${window}`;
  if (response.findings.length === 0) {
    await writeOut(`${header}: no findings.\n`);
    return 0;
  }
  const rows = response.findings.map((f) => [
    enumLabel(Severity, f.severity),
    enumLabel(SuspiciousActivityKind, f.kind),
    f.subject,
    String(f.count),
    f.lastSeen ? timestampDate(f.lastSeen).toISOString() : "-",
    f.description,
  ]);
  await writeOut(`${header}: ${response.findings.length} finding(s).\n\n${formatTable(["SEVERITY", "KIND", "SUBJECT", "COUNT", "LAST SEEN", "DESCRIPTION"], rows)}`);
  return 0;
});
