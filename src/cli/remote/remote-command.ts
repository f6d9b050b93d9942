import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { CommandError, oneLine } from "../command-error.ts";
import { connectToGateway, type GatewayConnection } from "./gateway-connection.ts";
import { commandErrorOf, describeFailure } from "./remote-error.ts";

/** The flags every command that talks to a gateway accepts. */
export const CONNECTION_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  "api-key": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/** The help text of {@link CONNECTION_OPTIONS}. */
export const CONNECTION_HELP = `Connection (flags win over the environment):
  --url URL          Gateway URL (PORTCULLIS_URL; default: the remembered login's, else http://127.0.0.1:50051).
  --token JWT        Use this access token (PORTCULLIS_TOKEN) instead of the remembered login.
  --api-key KEY      Use this API key (PORTCULLIS_API_KEY) instead of the remembered login.
                     Prefer the environment variables: flag values show in the process list.
  -h, --help         Show this help.
`;

/**
 * Parses a command line strictly: unknown flags, missing values and a wrong number of positional
 * arguments are usage errors (exit 2). Error texts name flags, never their values.
 */
export function parseCommandLine<const T extends ParseArgsOptionsConfig>(args: string[], options: T, positionals: { names: readonly string[]; optional?: number } = { names: [] }) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new CommandError(`${oneLine(err).replace(/\. To specify a positional argument.*$/, "")}; see --help`, 2);
  }
  if (!(parsed.values as { help?: boolean }).help) {
    const { names, optional = 0 } = positionals;
    const given = parsed.positionals.length;
    if (given < names.length - optional) throw new CommandError(`missing ${names.slice(given).join(" ")}; see --help`, 2);
    if (given > names.length) throw new CommandError(`unexpected argument ${JSON.stringify(oneLine(parsed.positionals[names.length]).slice(0, 64))}; see --help`, 2);
  }
  return parsed;
}

/**
 * Runs a command body and turns whatever it throws into one stderr line (`portcullis: …`, never a
 * stack) and the exit code: 2 for usage errors (which end with "; see --help"), 1 for failures.
 */
export async function runReportingErrors(work: (context: { connectionUrl(url: string): void }) => Promise<number>): Promise<number> {
  let url: string | undefined;
  try {
    return await work({ connectionUrl: (value) => (url = value) });
  } catch (err) {
    // The reader of stdout stopped reading: nothing is wrong that a message could help with.
    if (err instanceof StdoutClosed) return 0;
    const exitCode = commandErrorOf(err)?.exitCode ?? 1;
    const message = describeFailure(err, url);
    // Every usage error points at the help, whoever raised it.
    process.stderr.write(`portcullis: ${exitCode === 2 && !message.endsWith("see --help") ? `${message}; see --help` : message}\n`);
    return exitCode;
  }
}

/**
 * A command that talks to a gateway: parses its command line strictly (`positionals` as for
 * {@link parseCommandLine}), answers `--help` with `usage`, and runs `body` with the parsed line and a
 * `connect` that uses the connection flags — every error becoming one stderr line and an exit code.
 */
export function remoteCommand<const T extends ParseArgsOptionsConfig>(
  usage: string,
  options: T,
  positionals: { names: readonly string[]; optional?: number },
  body: (line: ReturnType<typeof parseCommandLine<T>>, connect: () => Promise<GatewayConnection>) => Promise<number>,
): { run(args: string[]): Promise<number> } {
  return {
    run: (args) =>
      runReportingErrors(async (context) => {
        const line = parseCommandLine(args, options, positionals);
        if ((line.values as { help?: boolean }).help) {
          await writeOut(usage);
          return 0;
        }
        return body(line, () => connectWith(line.values as Parameters<typeof connectWith>[0], context));
      }),
  };
}

/** Connects with the connection flags of a parsed command line. */
export function connectWith(
  values: { url?: string | undefined; token?: string | undefined; "api-key"?: string | undefined },
  context: { connectionUrl(url: string): void },
): Promise<GatewayConnection> {
  return connectToGateway({ url: values.url, token: values.token, apiKey: values["api-key"] }).then((connection) => {
    context.connectionUrl(connection.url);
    return connection;
  });
}

/** Thrown by {@link writeOut} when whoever read stdout has gone (`portcullis keys list | head -1`). */
class StdoutClosed extends Error {}

// Without a listener, a broken pipe on stdout is an uncaught 'error' event: a stack trace on stderr.
process.stdout.on("error", () => undefined);

/** Writes `text` to stdout and waits until it is flushed (a pipe may be slow; exit must not cut it). */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(text, (err) => {
      if (!err) resolve();
      else reject((err as NodeJS.ErrnoException).code === "EPIPE" ? new StdoutClosed() : err);
    }),
  );
}
