import { AuthService, type LoginResponse } from "../../../gen/portcullis/v1/auth_pb.js";
import { CommandError } from "../command-error.ts";
import { writeStoredLogin } from "../remote/credentials-file.ts";
import { connectToGateway } from "../remote/gateway-connection.ts";
import { isoOf } from "../remote/remembered-login.ts";
import type { Runnable } from "../command-table.ts";
import { parseCommandLine, runReportingErrors, writeOut } from "../remote/remote-command.ts";
import { isMfaRequired } from "../remote/remote-error.ts";
import { openTerminal, promptHidden, promptLine, readSecretFromStdin, stdinIsTerminal } from "../remote/terminal-input.ts";
import { describeWhoAmI } from "./whoami.ts";

const USAGE = `Usage: portcullis login [--username NAME] [--totp CODE] [--url URL]

Logs in to a gateway and remembers the session for later commands, in a file only you can read
(PORTCULLIS_CREDENTIALS_FILE, default $XDG_CONFIG_HOME/portcullis/credentials.json or
~/.config/portcullis/credentials.json). Its access token is refreshed as needed; "portcullis logout"
ends the session and deletes the file.

The password is never a flag value (it would land in shell history and the process list): it is read
from stdin when stdin is piped (all of it; one trailing newline is dropped), e.g.
  read -rs PASSWORD && printf %s "$PASSWORD" | portcullis login --username alice
or asked for at the terminal without echo.

Options:
  --username NAME      The login name (asked for at a terminal when omitted).
  --password-stdin     Read the password from stdin (the default when stdin is not a terminal).
  --totp CODE          A current TOTP code or a backup code, for accounts with MFA. When the gateway
                       requires one and this is omitted, it is asked for at the terminal (even when
                       the password is piped); without a terminal the login fails (exit 1).
  --url URL            Gateway URL (PORTCULLIS_URL; default: the remembered login's, else
                       http://127.0.0.1:50051).
  -h, --help           Show this help.
`;

const OPTIONS = {
  username: { type: "string" },
  "password-stdin": { type: "boolean" },
  totp: { type: "string" },
  url: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** `login`: opens a session and remembers it; see {@link USAGE}. */
export const loginCommand: Runnable = {
  run: (args) =>
    runReportingErrors(async (context) => {
      const { values } = parseCommandLine(args, OPTIONS);
      if (values.help) {
        await writeOut(USAGE);
        return 0;
      }
      const interactive = stdinIsTerminal();
      if (values["password-stdin"] && interactive) throw new CommandError("--password-stdin needs the password piped in on stdin", 2);
      if (values.totp !== undefined && values.totp.trim() === "") throw new CommandError("--totp needs a code", 2);

      // 1. Who: the username from the flag or the terminal; the password from stdin or the terminal.
      const username = values.username ?? (interactive ? await promptLine("Username: ") : undefined);
      if (username === undefined) throw new CommandError("--username is required when stdin is not a terminal", 2);
      if (username === "") throw new CommandError("the username is empty", 2);
      const password = interactive ? await promptHidden("Password: ") : await readSecretFromStdin("password");
      if (password === "") throw new CommandError("the password is empty", 2);

      // 2. Log in, with an MFA code when the gateway asks for one.
      const connection = await connectToGateway({ url: values.url }, process.env, { anonymous: true });
      context.connectionUrl(connection.url);
      const auth = connection.client(AuthService);
      let response: LoginResponse;
      try {
        response = await auth.login({ username, password, mfaCode: values.totp?.trim() ?? "" });
      } catch (err) {
        if (!isMfaRequired(err) || values.totp !== undefined) throw err;
        // Not a usage error: the command line was fine, the account needs a code nobody can type here.
        const terminal = openTerminal();
        if (!terminal) throw new CommandError("this account requires an MFA code and there is no terminal to ask for it: pass --totp CODE (a TOTP code or a backup code)");
        let mfaCode: string;
        try {
          mfaCode = (await promptLine("MFA code (TOTP or backup code): ", terminal)).replace(/\s+/g, "");
        } finally {
          terminal.close();
        }
        if (mfaCode === "") throw new CommandError("no MFA code given");
        response = await auth.login({ username, password, mfaCode });
      }

      // 3. Remember the session, then say who is logged in (as the gateway sees the new token).
      await writeStoredLogin(connection.credentialsFile, {
        url: connection.url,
        username: response.user?.username ?? username,
        sessionId: response.sessionId,
        accessToken: response.accessToken,
        accessTokenExpiresAt: isoOf(response.accessTokenExpiresAt),
        refreshToken: response.refreshToken,
        refreshTokenExpiresAt: isoOf(response.refreshTokenExpiresAt),
      });
      const asNewSession = await connectToGateway({ url: connection.url, token: response.accessToken }, process.env);
      const me = await asNewSession.client(AuthService).whoAmI({});
      let text = `Logged in to ${connection.url}: ${describeWhoAmI(me)}\n`;
      if (response.backupCodesRemaining !== undefined) text += `A backup code was used; ${response.backupCodesRemaining} remain.\n`;
      await writeOut(text);
      return 0;
    }),
};
