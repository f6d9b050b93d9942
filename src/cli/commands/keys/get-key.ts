import { ApiKeyService, GetApiKeyResponseSchema } from "../../../../gen/portcullis/v1/api_key_pb.js";
import type { Runnable } from "../../command-table.ts";
import { formatJson } from "../../output/json-output.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connectWith, parseCommandLine, runReportingErrors, writeOut } from "../../remote/remote-command.ts";
import { parseKeyId } from "./key-arguments.ts";
import { formatKeyDetails } from "./key-display.ts";

const USAGE = `Usage: portcullis keys get ID [--json]

Shows one API key (never its secret). Another user's key is "not found" unless you may manage users.

Options:
  --json             Print the GetApiKey response as JSON.
${CONNECTION_HELP}`;

/** `keys get`; see {@link USAGE}. */
export const getKeyCommand: Runnable = {
  run: (args) =>
    runReportingErrors(async (context) => {
      const { values, positionals } = parseCommandLine(args, { ...CONNECTION_OPTIONS, json: { type: "boolean" } }, { names: ["ID"] });
      if (values.help) {
        await writeOut(USAGE);
        return 0;
      }
      const keyId = parseKeyId(positionals[0]);
      const connection = await connectWith(values, context);
      const response = await connection.client(ApiKeyService).getApiKey({ keyId });
      if (values.json) await writeOut(formatJson(GetApiKeyResponseSchema, response));
      else await writeOut(response.apiKey ? formatKeyDetails(response.apiKey) : `No record for key ${keyId}.\n`);
      return 0;
    }),
};
