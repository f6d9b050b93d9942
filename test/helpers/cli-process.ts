import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the real CLI (`node src/cli/main.ts …`, as the `portcullis` bin and `npm run -s cli` do) in a
 * child process with a clean environment: only PATH, the given HOME and `env` — never the developer's
 * PORTCULLIS_* variables or real home directory. Stdin is piped (`stdin`, or closed empty) and the child
 * runs in a session of its own, without a controlling terminal, so the CLI sees no terminal at all (it
 * would otherwise prompt at the developer's through /dev/tty).
 */
export function runCli(args: readonly string[], options: { home: string; env?: Record<string, string>; stdin?: string; closeStdout?: boolean }): Promise<CliResult> {
  const child = spawn(process.execPath, ["src/cli/main.ts", ...args], {
    cwd: ROOT,
    env: { PATH: process.env["PATH"] ?? "", HOME: options.home, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  // Like `portcullis … | head -0`: the reader is gone before the CLI writes.
  if (options.closeStdout) child.stdout.destroy();
  else child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? "");
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}
