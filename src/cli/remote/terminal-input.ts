import { closeSync, openSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { ReadStream, WriteStream } from "node:tty";
import { CommandError } from "../command-error.ts";

// A password is at most 1024 code points; anything much longer on stdin is a mistake (a file piped in).
const MAX_STDIN_BYTES = 16 * 1024;

/** True when stdin is a terminal someone can type at (prompts are possible). */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/** Where prompts are asked and answered; `close` releases it (a no-op for stdin and stderr). */
export interface Terminal {
  readonly input: NodeJS.ReadStream;
  readonly output: NodeJS.WriteStream;
  close(): void;
}

/**
 * The terminal of the person running the command: stdin and stderr when stdin is one; else the
 * controlling terminal (`/dev/tty`), which a command whose stdin is piped (`printf %s "$PW" | portcullis
 * login`) still has when started from a shell; undefined in a CI job, a cron job or a service.
 */
export function openTerminal(): Terminal | undefined {
  if (stdinIsTerminal()) return { input: process.stdin, output: process.stderr, close: () => undefined };
  let inputFd: number;
  let outputFd: number;
  try {
    inputFd = openSync("/dev/tty", "r");
  } catch {
    return undefined; // no controlling terminal (ENXIO), or no /dev/tty at all
  }
  try {
    outputFd = openSync("/dev/tty", "w");
  } catch {
    closeSync(inputFd);
    return undefined;
  }
  const input = new ReadStream(inputFd);
  const output = new WriteStream(outputFd);
  return {
    input,
    output,
    close() {
      input.destroy();
      output.destroy();
    },
  };
}

/**
 * Reads all of piped stdin as one secret, dropping one trailing newline (`echo` adds one). Secrets are
 * read from stdin rather than flags because flag values land in shell history and the process list.
 */
export async function readSecretFromStdin(what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN_BYTES) throw new CommandError(`stdin is too long for ${what}`);
    chunks.push(chunk);
  }
  const secret = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (secret === "") throw new CommandError(`no ${what} on stdin`);
  return secret;
}

/** Asks for a line at the terminal (stdin by default), echoing what is typed (for non-secrets: a username). */
export async function promptLine(question: string, terminal: Pick<Terminal, "input" | "output"> = { input: process.stdin, output: process.stderr }): Promise<string> {
  const rl = createInterface({ input: terminal.input, output: terminal.output, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/**
 * Asks for a secret at the terminal without echoing it. The terminal is put in raw mode for the
 * duration, so Ctrl-C arrives as a character: it aborts (exit 130, as a shell would report SIGINT).
 */
export function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve, reject) => {
    let typed = "";
    const finish = (error: Error | undefined) => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString("utf8")) {
        if (char === "\r" || char === "\n") return finish(undefined);
        if (char === "\u0003") return finish(new CommandError("cancelled", 130));
        if (char === "\u0004") return typed === "" ? finish(new CommandError("cancelled", 130)) : finish(undefined);
        if (char === "\u007f" || char === "\b") typed = [...typed].slice(0, -1).join("");
        else if (char === "\u0015") typed = "";
        else if (char >= " ") typed += char;
      }
    };
    // Echo goes off before the prompt shows: whatever is typed once the prompt is visible is hidden.
    input.setRawMode(true);
    process.stderr.write(question);
    input.resume();
    input.on("data", onData);
  });
}
