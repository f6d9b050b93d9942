#!/usr/bin/env node
// The admin command line: `npm run -s cli -- <command>`, or the package's `portcullis` bin.
import { dispatch, listCommands, type CommandTable } from "./command-table.ts";

const COMMANDS: CommandTable = {
  login: { summary: "Log in to a gateway and remember the session (password on stdin or prompted).", load: async () => (await import("./commands/login.ts")).loginCommand },
  logout: { summary: "End the remembered session and delete the credentials file.", load: async () => (await import("./commands/logout.ts")).logoutCommand },
  whoami: { summary: "Show who you are logged in as, with your role and permissions.", load: async () => (await import("./commands/whoami.ts")).whoamiCommand },
  keys: { summary: "Manage API keys: create, list, get, rotate, revoke, revoke-all, health.", load: async () => (await import("./commands/keys/keys-group.ts")).keysCommand },
  audit: { summary: "Read the audit log: query, tail, export, verify, suspicious.", load: async () => (await import("./commands/audit/audit-group.ts")).auditCommand },
  "bootstrap-owner": { summary: "Create the first owner account (password on stdin or --generate).", load: async () => (await import("./commands/bootstrap-owner.ts")).bootstrapOwnerCommand },
  "rotate-signing-key": {
    summary: "Rotate the JWT signing key now (old tokens stay valid until they expire).",
    load: async () => (await import("./commands/rotate-signing-key.ts")).rotateSigningKeyCommand,
  },
};

const USAGE = `Usage: portcullis <command> [options]     (or: npm run -s cli -- <command> [options])

Portcullis admin command line. "portcullis <command> --help" describes a command.

Commands:
${listCommands(COMMANDS)}

Options:
  -h, --help         Show this help.
  -v, --version      Print the version.

Remote commands find the gateway at --url, else PORTCULLIS_URL, else http://127.0.0.1:50051, and
authenticate with --token / PORTCULLIS_TOKEN, --api-key / PORTCULLIS_API_KEY, or the login remembered by
"portcullis login" (PORTCULLIS_CREDENTIALS_FILE). bootstrap-owner and rotate-signing-key work on the
gateway's database directly. Exit codes: 0 success, 1 failure, 2 usage error.
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "-v" || argv[0] === "--version") {
    const { default: pkg } = await import("../../package.json", { with: { type: "json" } });
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  return dispatch(COMMANDS, argv, USAGE, "command");
}

process.exitCode = await main(process.argv.slice(2));
