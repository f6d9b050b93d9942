import { AuthMethod, AuthService, WhoAmIResponseSchema, type WhoAmIResponse } from "../../../gen/portcullis/v1/auth_pb.js";
import { PrincipalKind, Role } from "../../../gen/portcullis/v1/common_pb.js";
import { enumLabel } from "../output/enum-labels.ts";
import { formatJson } from "../output/json-output.ts";
import { printable } from "../output/terminal-text.ts";
import type { Runnable } from "../command-table.ts";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connectWith, parseCommandLine, runReportingErrors, writeOut } from "../remote/remote-command.ts";

const USAGE = `Usage: portcullis whoami [--json]

Shows who the gateway takes you for: user or API key, role, MFA state, and the permissions of your
credentials.

Options:
  --json             Print the WhoAmI response as JSON.
${CONNECTION_HELP}`;

/** One line about the caller: "alice (role admin, MFA on, session 3f…)" or "API key k1 of alice (…)". */
export function describeWhoAmI(me: WhoAmIResponse): string {
  const user = printable(me.user?.username ?? me.principal?.displayName ?? "(unknown)");
  const facts = [`role ${enumLabel(Role, me.user?.role ?? me.principal?.role ?? Role.UNSPECIFIED)}`, `MFA ${me.mfaEnabled ? "on" : "off"}`];
  if (me.authMethod !== AuthMethod.UNSPECIFIED) facts.push(`signed in by ${enumLabel(AuthMethod, me.authMethod)}`);
  if (me.sessionId !== "") facts.push(`session ${printable(me.sessionId)}`);
  const who = me.principal?.kind === PrincipalKind.API_KEY ? `API key ${printable(me.principal.id)} of ${user}` : user;
  return `${who} (${facts.join(", ")})`;
}

/** `whoami`: describes the caller; see {@link USAGE}. */
export const whoamiCommand: Runnable = {
  run: (args) =>
    runReportingErrors(async (context) => {
      const { values } = parseCommandLine(args, { ...CONNECTION_OPTIONS, json: { type: "boolean" } });
      if (values.help) {
        await writeOut(USAGE);
        return 0;
      }
      const connection = await connectWith(values, context);
      const me = await connection.client(AuthService).whoAmI({});
      if (values.json) {
        await writeOut(formatJson(WhoAmIResponseSchema, me));
        return 0;
      }
      await writeOut(`${describeWhoAmI(me)}\nGateway: ${connection.url}\nPermissions: ${me.permissions.map(printable).join(", ") || "(none)"}\n`);
      return 0;
    }),
};
