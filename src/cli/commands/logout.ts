import { AuthService, LogoutScope } from "../../../gen/portcullis/v1/auth_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { credentialsFilePath, deleteStoredLogin, readStoredLogin } from "../remote/credentials-file.ts";
import { connectToGateway } from "../remote/gateway-connection.ts";
import { LoginEndedError } from "../remote/remembered-login.ts";
import { commandErrorOf } from "../remote/remote-error.ts";
import type { Runnable } from "../command-table.ts";
import { parseCommandLine, runReportingErrors, writeOut } from "../remote/remote-command.ts";

const USAGE = `Usage: portcullis logout [--all]

Ends the remembered login's session at the gateway (its refresh and access tokens stop working) and
deletes the credentials file. If the session had already ended, the file is deleted all the same.

Options:
  --all              End every session of your account, not only this one.
  -h, --help         Show this help.
`;

/** `logout`: ends the remembered session and forgets it; see {@link USAGE}. */
export const logoutCommand: Runnable = {
  run: (args) =>
    runReportingErrors(async (context) => {
      const { values } = parseCommandLine(args, { all: { type: "boolean" }, help: { type: "boolean", short: "h" } });
      if (values.help) {
        await writeOut(USAGE);
        return 0;
      }
      if ((await readStoredLogin(credentialsFilePath())) === undefined) {
        await writeOut("Not logged in.\n");
        return 0;
      }
      // Only the remembered login: logging out with a --token or PORTCULLIS_TOKEN would leave the file.
      const env = { ...process.env, PORTCULLIS_TOKEN: "", PORTCULLIS_API_KEY: "", PORTCULLIS_URL: "" };
      const connection = await connectToGateway({}, env);
      context.connectionUrl(connection.url);
      let ended = 0;
      try {
        ended = (await connection.client(AuthService).logout({ scope: values.all ? LogoutScope.ALL_SESSIONS : LogoutScope.CURRENT_SESSION })).sessionsRevoked;
      } catch (err) {
        // A session that is already over (expired, revoked) is no reason to keep its file.
        if (!(err instanceof ConnectError && err.code === Code.Unauthenticated) && !(commandErrorOf(err) instanceof LoginEndedError)) throw err;
      }
      await deleteStoredLogin(connection.credentialsFile);
      await writeOut(`Logged out of ${connection.url}${ended > 1 ? ` (${ended} sessions ended)` : ""}.\n`);
      return 0;
    }),
};
