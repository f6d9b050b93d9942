import { spawn, type ChildProcess } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { once } from "node:events";
import { watchParentFor } from "./parent-watchdog.ts";

const STOP_GRACE_MS = 5000;

/** A database server child process whose output goes to a log file. */
export interface ServerProcess {
  readonly pid: number;
  readonly logFile: string;
  /** Settles when the process has exited, for whatever reason. */
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL if it is still running after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts a server process with stdout and stderr appended to `logFile` (created 0600). An embedded
 * server never outlives the gateway that owns it: if this process exits without stopping it (an
 * uncaught error, `process.exit()`) the `exit` handler kills it, and if this process is killed outright
 * (SIGKILL, OOM) a watchdog does.
 */
export async function spawnServerProcess(options: { command: string; args: readonly string[]; logFile: string }): Promise<ServerProcess> {
  const log = await open(options.logFile, "a", 0o600);
  let child: ChildProcess;
  try {
    await log.write(`\n--- ${new Date().toISOString()} ${options.command} ${options.args.join(" ")}\n`);
    child = spawn(options.command, options.args, { stdio: ["ignore", log.fd, log.fd] });
    // 'spawn' or 'error' (e.g. ENOENT) — whichever comes first tells whether it started at all.
    await once(child, "spawn");
  } finally {
    await log.close();
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${options.command} did not start`);

  const killOnParentExit = () => {
    child.kill("SIGKILL");
  };
  process.on("exit", killOnParentExit);
  const dismissWatchdog = watchParentFor(pid);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      process.off("exit", killOnParentExit);
      dismissWatchdog();
      resolve();
    });
  });

  return {
    pid,
    logFile: options.logFile,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
      });
      const forced = await Promise.race([exited.then(() => false), timedOut]);
      clearTimeout(timer);
      if (forced) {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

/** The last `lines` lines of a log file, for error messages; empty when it cannot be read. */
export async function readLogTail(logFile: string, lines = 20): Promise<string> {
  try {
    return (await readFile(logFile, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
