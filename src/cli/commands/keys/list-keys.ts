import { create } from "@bufbuild/protobuf";
import { ApiKeyService, ApiKeyStatus, ListApiKeysResponseSchema, type ApiKey } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { CommandError } from "../../command-error.ts";
import { formatJson } from "../../output/json-output.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, remoteCommand, writeOut } from "../../remote/remote-command.ts";
import { parseOwnerSelection, parseStatus } from "./key-arguments.ts";
import { formatKeyTable } from "./key-display.ts";

const USAGE = `Usage: portcullis keys list [--status STATUS] [--user ID | --all] [--json | --quiet]

Lists API keys, newest first: yours, or (for admins and owners) one user's or everyone's. All pages are
fetched.

Options:
  --status STATUS    Only keys that are active, rotated, revoked or expired.
  --user ID          The keys of this user (needs user-management rights for someone else).
  --all              The keys of all users (needs user-management rights).
  --json             Print one ListApiKeys response holding every key, as JSON.
  -q, --quiet        Print only the key ids, one per line.
${CONNECTION_HELP}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  status: { type: "string" },
  user: { type: "string" },
  all: { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const;

const PAGE_SIZE = 500;
// A safety net against a server that keeps answering with a next page: 200 pages are 100 000 keys.
const MAX_PAGES = 200;

/** `keys list`; see {@link USAGE}. */
export const listKeysCommand = remoteCommand(USAGE, OPTIONS, { names: [] }, async ({ values }, connect) => {
  if (values.quiet && values.json) throw new CommandError("give either --quiet or --json, not both", 2);
  const status = values.status === undefined ? ApiKeyStatus.UNSPECIFIED : parseStatus(values.status);
  const owner = parseOwnerSelection(values);

  const connection = await connect();
  const client = connection.client(ApiKeyService);
  const keys: ApiKey[] = [];
  let pageToken = "";
  for (let page = 0; ; page++) {
    if (page === MAX_PAGES) throw new CommandError(`the gateway returned more than ${MAX_PAGES} pages; narrow the list with --status or --user`);
    const response = await client.listApiKeys({ ...owner, status, pageSize: PAGE_SIZE, pageToken });
    keys.push(...response.apiKeys);
    if (response.nextPageToken === "" || response.nextPageToken === pageToken) break;
    pageToken = response.nextPageToken;
  }

  if (values.json) await writeOut(formatJson(ListApiKeysResponseSchema, create(ListApiKeysResponseSchema, { apiKeys: keys })));
  else if (values.quiet) await writeOut(keys.map((key) => `${key.id}\n`).join(""));
  else if (keys.length === 0) await writeOut("No API keys.\n");
  else await writeOut(formatKeyTable(keys, { showOwner: owner.allUsers || owner.userId !== "" }));
  return 0;
});
