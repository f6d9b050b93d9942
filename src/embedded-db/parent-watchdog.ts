import { spawn } from "node:child_process";

// Blocks on a pipe whose only writer is this process; EOF means this process is gone, however it died.
const WATCHDOG_SCRIPT = [
  "read _ignored",
  'kill -TERM "$1" 2>/dev/null || exit 0',
  'i=0; while [ $i -lt 25 ] && kill -0 "$1" 2>/dev/null; do sleep 0.2; i=$((i + 1)); done',
  'kill -KILL "$1" 2>/dev/null',
  "exit 0",
].join("\n");

/**
 * Makes sure `pid` does not outlive this process even when this process is SIGKILLed (which runs no
 * `exit` handlers): a tiny `sh` holds the read end of a pipe from us, and when the pipe closes it sends
 * the server SIGTERM, then SIGKILL after 5 s. Returns the function that dismisses the watchdog after a
 * normal stop. POSIX only; elsewhere the `exit` handler is the only guard.
 */
export function watchParentFor(pid: number): () => void {
  if (process.platform === "win32") return () => undefined;
  const watchdog = spawn("sh", ["-c", WATCHDOG_SCRIPT, "portcullis-watchdog", String(pid)], { stdio: ["pipe", "ignore", "ignore"] });
  watchdog.on("error", () => undefined); // no sh: degrade to the exit handler alone
  watchdog.stdin?.on("error", () => undefined);
  // Neither the watchdog nor its pipe may keep this process alive.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return () => {
    watchdog.kill("SIGKILL");
  };
}
