import { ApiKeyFindingKind, ApiKeyService, GetApiKeyHealthResponseSchema } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { Severity } from "../../../../gen/portcullis/v1/common_pb.js";
import { enumLabel } from "../../output/enum-labels.ts";
import { formatJson } from "../../output/json-output.ts";
import { formatTable } from "../../output/table.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { parseOwnerSelection } from "./key-arguments.ts";

const USAGE = `Usage: portcullis keys health [--user ID | --all] [--json]

Checks keys that are not revoked for risks — older than 90 days, unused for 30 days, never expiring,
administrative scopes on a long-lived key, a disabled owner — and prints each finding with advice, most
severe first. The exit code is 0 whether or not there are findings; scripts can test --json output.

Options:
  --user ID          Check this user's keys (needs user-management rights for someone else).
  --all              Check the keys of all users (needs user-management rights).
  --json             Print the GetApiKeyHealth response as JSON.
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, user: { type: "string" }, all: { type: "boolean" }, json: { type: "boolean" } } as const;

/** `keys health`; see {@link USAGE}. */
export const keyHealthCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  const owner = parseOwnerSelection(values);
  const connection = await connect();
  const response = await connection.client(ApiKeyService).getApiKeyHealth(owner);
  if (values.json) {
    await writeOut(formatJson(GetApiKeyHealthResponseSchema, response));
    return 0;
  }
  const checked = `Checked ${response.checkedCount} key${response.checkedCount === 1n ? "" : "s"}`;
  if (response.findings.length === 0) {
    await writeOut(`${checked}: no findings.\n`);
    return 0;
  }
  const showOwner = owner.allUsers || owner.userId !== "";
  const headers = ["SEVERITY", "FINDING", "KEY", "NAME", ...(showOwner ? ["OWNER"] : []), "ADVICE"];
  const rows = response.findings.map((finding) => [
    enumLabel(Severity, finding.severity),
    enumLabel(ApiKeyFindingKind, finding.kind),
    finding.keyId,
    finding.keyName,
    ...(showOwner ? [finding.ownerUserId] : []),
    finding.advice,
  ]);
  const count = response.findings.length;
  await writeOut(`${checked}: ${count} finding${count === 1 ? "" : "s"}.\n\n${formatTable(headers, rows)}`);
  return 0;
});
