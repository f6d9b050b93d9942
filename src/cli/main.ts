// The admin command line: `npm run -s cli -- <command>`. Commands arrive with later issues.
import { auditCommand } from "./commands/audit-verify.ts";
import { bootstrapOwnerCommand } from "./commands/bootstrap-owner.ts";
import { rotateSigningKeyCommand } from "./commands/rotate-signing-key.ts";

interface Command {
  readonly summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  audit: auditCommand,
  "bootstrap-owner": bootstrapOwnerCommand,
  "rotate-signing-key": rotateSigningKeyCommand,
};

const USAGE = `Usage: npm run -s cli -- <command> [options]

Portcullis admin command line.

Commands:
${
  Object.entries(COMMANDS)
    .map(([name, command]) => `  ${name.padEnd(18)} ${command.summary}`)
    .join("\n") || "  (none yet)"
}

Options:
  -h, --help         Show this help.
  -v, --version      Print the version.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (name === "-v" || name === "--version") {
    const { default: pkg } = await import("../../package.json", { with: { type: "json" } });
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`portcullis: unknown command ${JSON.stringify(name.slice(0, 64))}; see --help\n`);
    return 2;
  }
  return command.run(rest);
}

process.exitCode = await main(process.argv.slice(2));
