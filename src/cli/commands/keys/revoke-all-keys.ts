import { ApiKeyService, RevokeAllApiKeysResponseSchema } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { formatJson } from "../../output/json-output.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { parseReason } from "./key-arguments.ts";

const USAGE = `Usage: portcullis keys revoke-all --reason TEXT [--everyone] [--json]

Revokes all your active and rotated keys at once (for example after a leak). Owners may revoke every
key of every user with --everyone.

Options:
  --reason TEXT      Why (recorded on each key and in the audit log). Required.
  --everyone         Revoke the keys of all users (owners only).
  --json             Print the RevokeAllApiKeys response as JSON.
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, reason: { type: "string" }, everyone: { type: "boolean" }, json: { type: "boolean" } } as const;

/** `keys revoke-all`; see {@link USAGE}. */
export const revokeAllKeysCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  const reason = parseReason(values.reason);
  const connection = await connect();
  const response = await connection.client(ApiKeyService).revokeAllApiKeys({ reason, allUsers: values.everyone === true });
  if (values.json) await writeOut(formatJson(RevokeAllApiKeysResponseSchema, response));
  else {
    const count = response.revokedCount;
    await writeOut(`Revoked ${count} API key${count === 1n ? "" : "s"}${values.everyone ? " of all users" : ""}.\n`);
  }
  return 0;
});
