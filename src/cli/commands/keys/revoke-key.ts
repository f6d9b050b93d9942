import { ApiKeyService, RevokeApiKeyResponseSchema } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { formatJson } from "../../output/json-output.ts";
import { printable } from "../../output/terminal-text.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { parseKeyId, parseReason } from "./key-arguments.ts";
import { formatTime } from "./key-display.ts";

const USAGE = `Usage: portcullis keys revoke ID --reason TEXT [--json]

Revokes a key immediately and permanently; every gateway instance stops accepting it within a second.
Revoking a key that is already revoked succeeds and changes nothing.

Options:
  --reason TEXT      Why (recorded on the key and in the audit log). Required.
  --json             Print the RevokeApiKey response as JSON.
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, reason: { type: "string" }, json: { type: "boolean" } } as const;

/** `keys revoke`; see {@link USAGE}. */
export const revokeKeyCommand = remoteCommand(USAGE, OPTIONS, { names: ["ID"] }, async ({ values, positionals }, connect) => {
  const keyId = parseKeyId(positionals[0]);
  const reason = parseReason(values.reason);
  const connection = await connect();
  const response = await connection.client(ApiKeyService).revokeApiKey({ keyId, reason });
  if (values.json) await writeOut(formatJson(RevokeApiKeyResponseSchema, response));
  else {
    const key = response.apiKey;
    await writeOut(`Revoked API key ${printable(key?.id ?? keyId)}${key ? ` "${printable(key.name)}" at ${formatTime(key.revokedAt)}` : ""}.\n`);
  }
  return 0;
});
