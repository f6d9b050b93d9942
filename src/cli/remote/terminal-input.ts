import { createInterface } from "node:readline/promises";
import { CommandError } from "../command-error.ts";

// A password is at most 1024 code points; anything much longer on stdin is a mistake (a file piped in).
const MAX_STDIN_BYTES = 16 * 1024;

/** True when stdin is a terminal someone can type at (prompts are possible). */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
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

/** Asks for a line at the terminal, echoing what is typed (for non-secrets: a username). */
export async function promptLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
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
