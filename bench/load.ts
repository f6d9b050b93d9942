// What the throughput benchmarks share: the load generators (ghz for gRPC over HTTP/2, hey for Connect
// JSON over HTTP/1.1, both Go programs installed into the tools dir with `go install`), core pinning,
// the bare connect-node baseline, and a process's CPU time. Loopback only; every run is bounded.
import { execFile, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

const run = promisify(execFile);

/** One measured run: calls per second, latency percentiles (ms), failed calls. */
export interface Round {
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
  /** What the load generator said about the calls that failed, for the message when there are too many. */
  errorDetail?: string;
}

// With taskset (Linux, util-linux) and two or more cores, the server under test runs alone on one core
// and the load generator on another, so they do not take turns on the same core.
export const SERVER_CPU = "1";
export const LOAD_CPU = "0";
export const pinning = availableParallelism() >= 2 && spawnSync("taskset", ["-c", LOAD_CPU, "true"]).status === 0;

/** The direct children of a process (its database, its speech engine). */
export function childrenOf(pid: number): number[] {
  const result = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" });
  return result.stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map(Number);
}

/** Pins every thread of a running process, and of its children, to one core (best effort). */
export function pinProcessTree(pid: number | undefined, cpu: string): void {
  if (!pinning || pid === undefined) return;
  for (const target of [pid, ...childrenOf(pid)]) spawnSync("taskset", ["-a", "-p", "-c", cpu, String(target)], { stdio: "ignore" });
}

/** CPU seconds (user + system) a process has used so far, from /proc; undefined where there is none. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
      .replace(/^.*\) /, "")
      .split(" ");
    // After the command: state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** A process's command name (its `comm`), or its pid when it is gone. */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return String(pid);
  }
}

/** Pauses or resumes a process tree (SIGSTOP / SIGCONT), so that an idle server's timers cannot disturb another's round. */
export function setPaused(pid: number | undefined, paused: boolean): void {
  if (pid === undefined) return;
  for (const target of [pid, ...childrenOf(pid)]) {
    try {
      process.kill(target, paused ? "SIGSTOP" : "SIGCONT");
    } catch {
      // already gone
    }
  }
}

/** One ghz run against a gRPC method: its JSON report's rate and latency distribution. */
export async function ghzRound(options: {
  ghz: string;
  protoset: string;
  port: number;
  method: string;
  headers: Record<string, string>;
  concurrency: number;
  durationMs: number;
  /** A fixed rate instead of as fast as possible. */
  rps?: number;
}): Promise<Round> {
  const { concurrency } = options;
  const args = ["--insecure", "--protoset", options.protoset, "--call", options.method, "-d", "{}", "-c", String(concurrency), "--connections", "1"];
  if (options.rps !== undefined) args.push("--rps", String(options.rps));
  args.push("-z", `${options.durationMs}ms`, "--skipFirst", "200", "-O", "json", "-m", JSON.stringify(options.headers), `127.0.0.1:${options.port}`);
  const [command, commandArgs] = pinning ? ["taskset", ["-c", LOAD_CPU, options.ghz, ...args]] : [options.ghz, args];
  const { stdout } = await run(command, commandArgs, { maxBuffer: 64 * 1024 * 1024, timeout: options.durationMs + 60_000 });
  const report = JSON.parse(stdout) as {
    rps: number;
    latencyDistribution: Array<{ percentage: number; latency: number }> | null;
    statusCodeDistribution: Record<string, number>;
    errorDistribution?: Record<string, number> | null;
  };
  const at = (p: number) => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? Number.NaN) / 1e6;
  // At the end of a timed run ghz closes its connection under the calls in flight (one per concurrent
  // worker) and, when it paces calls (--rps), under those it has queued but not sent: those end Canceled
  // ("the client connection is closing", ghz's own doing, however many) or Unavailable ("transport is
  // closing", at most one per worker); neither is a failure of the server.
  const clientClosed = Object.entries(report.errorDistribution ?? {}).reduce((sum, [error, n]) => sum + (error.includes("the client connection is closing") ? n : 0), 0);
  const cutOff = (report.statusCodeDistribution["Canceled"] ?? 0) + (report.statusCodeDistribution["Unavailable"] ?? 0) - clientClosed;
  const others = Object.entries(report.statusCodeDistribution).reduce((sum, [code, n]) => sum + (["OK", "Canceled", "Unavailable"].includes(code) ? 0 : n), 0);
  const errorDetail = Object.entries(report.errorDistribution ?? {})
    .map(([error, n]) => `${n}× ${error}`)
    .join("; ");
  return { perSecond: report.rps, p50: at(50), p99: at(99), errors: others + Math.max(0, cutOff - concurrency), errorDetail };
}

/** One hey run: Connect JSON POSTs over HTTP/1.1 keep-alive connections (one per concurrent worker). */
export async function heyRound(options: {
  hey: string;
  url: string;
  headers: Record<string, string>;
  concurrency: number;
  durationMs: number;
  /** Calls per second per worker instead of as fast as possible. */
  qpsPerWorker?: number;
}): Promise<Round> {
  const args = ["-z", `${options.durationMs}ms`, "-c", String(options.concurrency), "-m", "POST", "-T", "application/json", "-d", "{}"];
  if (options.qpsPerWorker !== undefined) args.push("-q", String(options.qpsPerWorker));
  for (const [name, value] of Object.entries(options.headers)) args.push("-H", `${name}: ${value}`);
  args.push(options.url);
  const [command, commandArgs] = pinning ? ["taskset", ["-c", LOAD_CPU, options.hey, ...args]] : [options.hey, args];
  const { stdout } = await run(command, commandArgs, { maxBuffer: 64 * 1024 * 1024, timeout: options.durationMs + 60_000 });
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? Number.NaN);
  const statuses = [...stdout.matchAll(/\[(\d+)\]\s+(\d+) responses/g)].map(([, code, n]) => [Number(code), Number(n)] as const);
  const failed = statuses.reduce((sum, [code, n]) => sum + (code === 200 ? 0 : n), 0);
  // hey's error distribution counts calls cut off by the end of the run too (one per worker at most).
  const errorLines = [...stdout.matchAll(/^\s+\[(\d+)\]\s+(?!.*responses)(.*)$/gm)];
  const transportErrors = errorLines.reduce((sum, [, n]) => sum + Number(n), 0);
  return {
    perSecond: number(/Requests\/sec:\s+([\d.]+)/),
    p50: number(/50%+ in ([\d.]+) secs/) * 1000,
    p99: number(/99%+ in ([\d.]+) secs/) * 1000,
    errors: failed + Math.max(0, transportErrors - options.concurrency),
    errorDetail: [...statuses.filter(([code]) => code !== 200).map(([code, n]) => `${n}× HTTP ${code}`), ...errorLines.map(([, n, text]) => `${n}× ${text}`)].join("; "),
  };
}

/** The bare connect-node server (bare-server.ts) in its own process; `whoAmIJson` is the WhoAmI answer it gives. */
export async function startBareServer(whoAmIJson = "{}"): Promise<{ port: number; http1Port: number; pid: number | undefined; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [new URL("./bare-server.ts", import.meta.url).pathname], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, BARE_WHOAMI_JSON: whoAmIJson },
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const ports = await new Promise<{ port: number; http1Port: number }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => resolve(JSON.parse(line) as { port: number; http1Port: number }));
    void exited.then(() => reject(new Error("bare server exited")));
  });
  return {
    ...ports,
    pid: child.pid,
    async stop() {
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
