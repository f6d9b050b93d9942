import { execFile } from "node:child_process";

/**
 * Runs a program to completion and returns its stdout. On failure the error names the program and ends
 * with the tail of its stderr, which is where Go explains what went wrong.
 */
export function runCommand(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { ...options, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) {
        const tail = stderr.trim().split("\n").slice(-15).join("\n");
        reject(new Error(`${command} ${args.join(" ")} failed: ${err.message.split("\n")[0]}${tail ? `\n${tail}` : ""}`, { cause: err }));
        return;
      }
      resolve(stdout);
    });
  });
}
