import { ApiKeyService, RotateApiKeyResponseSchema } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { CommandError } from "../../command-error.ts";
import { formatJson } from "../../output/json-output.ts";
import { printable } from "../../output/terminal-text.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { parseDuration, parseKeyId } from "./key-arguments.ts";
import { formatNewSecret, formatTime } from "./key-display.ts";

const USAGE = `Usage: portcullis keys rotate ID [--grace TIME] [--json | --quiet]

Replaces an active key with a new one (same name, scopes, tier, networks and metadata) and prints the
new secret once. The old key stops working at once, or after the grace period.

Options:
  --grace TIME       How long the old key keeps working, e.g. 1h or 30m (at most 24h; default: none).
  -q, --quiet        Print only the new key's secret, for scripts.
  --json             Print the RotateApiKey response (which holds the secret) as JSON.
${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, grace: { type: "string" }, quiet: { type: "boolean", short: "q" }, json: { type: "boolean" } } as const;

/** `keys rotate`; see {@link USAGE}. */
export const rotateKeyCommand = remoteCommand(USAGE, OPTIONS, { names: ["ID"] }, async ({ values, positionals }, connect) => {
  if (values.quiet && values.json) throw new CommandError("give either --quiet or --json, not both", 2);
  const keyId = parseKeyId(positionals[0]);
  const gracePeriod = values.grace === undefined ? undefined : parseDuration(values.grace, "--grace");

  const connection = await connect();
  const response = await connection.client(ApiKeyService).rotateApiKey({ keyId, ...(gracePeriod ? { gracePeriod } : {}) });
  if (values.quiet) await writeOut(`${response.secret}\n`);
  else if (values.json) await writeOut(formatJson(RotateApiKeyResponseSchema, response));
  else {
    const old = printable(response.parentKeyId || keyId);
    const until = response.graceExpiresAt && gracePeriod && gracePeriod.seconds > 0n ? `keeps working until ${formatTime(response.graceExpiresAt)}` : "has stopped working";
    await writeOut(formatNewSecret(`Rotated API key ${old}: the old key ${until}.`, response.secret, response.apiKey));
  }
  return 0;
});
