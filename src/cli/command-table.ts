/** What a command module exports: its entry point, returning the exit code. */
export interface Runnable {
  run(args: string[]): Promise<number>;
}

/**
 * One command of a table: its summary for the help, and its module, imported only when the command
 * runs — so `--help` and each command load just what they use (the database driver stays out of remote
 * commands, the Connect client out of database commands).
 */
export interface CommandEntry {
  readonly summary: string;
  load(): Promise<Runnable>;
}

/** Commands by name; a group (`keys`) is an entry whose module dispatches on its own table. */
export type CommandTable = Readonly<Record<string, CommandEntry>>;

/** The "Commands:" block of a help text. */
export function listCommands(table: CommandTable): string {
  const width = Math.max(16, ...Object.keys(table).map((name) => name.length + 2));
  return Object.entries(table)
    .map(([name, command]) => `  ${name.padEnd(width)} ${command.summary}`)
    .join("\n");
}

/**
 * Runs `argv[0]` of `table` with the rest of `argv`: help for no command, `-h`, `--help` or `help`;
 * exit 2 and one stderr line for an unknown command.
 */
export async function dispatch(table: CommandTable, argv: readonly string[], usage: string, what: string): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "-h" || name === "--help" || name === "help" || (name === undefined && what === "command")) {
    process.stdout.write(usage);
    return 0;
  }
  if (name === undefined) {
    // A group without its subcommand is a usage error: the help goes to stderr, stdout stays clean.
    process.stderr.write(usage);
    return 2;
  }
  const command = Object.hasOwn(table, name) ? table[name] : undefined;
  if (command === undefined) {
    process.stderr.write(`portcullis: unknown ${what} ${JSON.stringify(name.slice(0, 64))}; see --help\n`);
    return 2;
  }
  return (await command.load()).run(rest);
}
