import { ApiKeyService, CreateApiKeyResponseSchema } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { CommandError } from "../../command-error.ts";
import { formatJson } from "../../output/json-output.ts";
import { printable } from "../../output/terminal-text.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { parseDuration, parseMetadata, parseTier } from "./key-arguments.ts";
import { formatNewSecret } from "./key-display.ts";

const USAGE = `Usage: portcullis keys create --name NAME --scope SCOPE [--scope SCOPE…] [options]

Creates an API key for you and prints its secret once: it cannot be retrieved again. Each scope must be
one of your own permissions ("portcullis whoami" lists them).

Options:
  --name NAME          A name to recognise the key by (1 to 100 characters). Required.
  --scope SCOPE        A permission the key grants, e.g. ai.query; repeat for several. At least one.
  --expires-in TIME    Lifetime, e.g. 30d, 12h, 2w (default: the server's, 90 days).
  --no-expiry          A key that never expires (only if server policy allows; discouraged).
  --tier TIER          Rate-limit tier: basic, standard (default) or premium.
  --cidr CIDR          A client network the key may be used from (IPv4 or IPv6); repeat for several.
                       Default: any address.
  --metadata KEY=VALUE A label; repeat for several.
  --quiet              Print only the key's secret, for scripts: KEY=$(portcullis keys create … --quiet)
  --json               Print the CreateApiKey response (which holds the secret) as JSON.
${CONNECTION_HELP}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  name: { type: "string" },
  scope: { type: "string", multiple: true },
  "expires-in": { type: "string" },
  "no-expiry": { type: "boolean" },
  tier: { type: "string" },
  cidr: { type: "string", multiple: true },
  metadata: { type: "string", multiple: true },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
} as const;

/** `keys create`; see {@link USAGE}. */
export const createKeyCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  // 1. Everything checkable is checked before connecting.
  if (values.name === undefined || values.name.trim() === "") throw new CommandError("--name is required", 2);
  const scopes = (values.scope ?? []).map((scope) => scope.trim()).filter((scope) => scope !== "");
  if (scopes.length === 0) throw new CommandError("at least one --scope is required", 2);
  if (values.quiet && values.json) throw new CommandError("give either --quiet or --json, not both", 2);
  if (values["no-expiry"] && values["expires-in"] !== undefined) throw new CommandError("give either --expires-in or --no-expiry, not both", 2);
  const request = {
    name: values.name.trim(),
    scopes,
    ...(values["expires-in"] !== undefined ? { expiresIn: parseDuration(values["expires-in"], "--expires-in") } : {}),
    noExpiry: values["no-expiry"] === true,
    ...(values.tier !== undefined ? { rateLimitTier: parseTier(values.tier) } : {}),
    allowedCidrs: (values.cidr ?? []).map((cidr) => cidr.trim()),
    metadata: parseMetadata(values.metadata ?? []),
  };

  // 2. Create, then print the secret exactly once, in the form asked for.
  const connection = await connect();
  const response = await connection.client(ApiKeyService).createApiKey(request);
  if (values.quiet) await writeOut(`${response.secret}\n`);
  else if (values.json) await writeOut(formatJson(CreateApiKeyResponseSchema, response));
  else await writeOut(formatNewSecret(`Created API key "${printable(response.apiKey?.name ?? request.name)}".`, response.secret, response.apiKey));
  return 0;
});
