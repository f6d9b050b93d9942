import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

const ROOT = new URL("..", import.meta.url);

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts `node src/main.ts` as `npm start` does, with `env`, and waits for its "listening" line. `root`
 * is the checkout to run (default this one; the hot-path benchmark also runs another, for "before").
 */
export async function startGatewayProcess(env: Record<string, string>, root: URL = ROOT): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: root,
    // Logging at info, as in production: one line per RPC is part of what a call costs.
    env: { ...process.env, PORTCULLIS_PORT: "0", PORTCULLIS_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      try {
        const parsed = JSON.parse(line) as { port?: number; msg?: string };
        if (parsed.msg?.startsWith("listening on") && typeof parsed.port === "number") {
          // From here on the log is only drained, not parsed: the benchmark must not slow the gateway.
          lines.close();
          child.stdout!.resume();
          resolve(parsed.port);
        }
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`gateway exited with ${code} before listening`)));
  });
  return {
    child,
    port,
    async stop() {
      child.kill("SIGCONT"); // a benchmark may have paused it
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Runs the admin CLI (of `root`) with `env` and returns its stdout (throws with its stderr on failure). */
export function runCli(args: string[], env: Record<string, string>, root: URL = ROOT): string {
  const result = spawnSync(process.execPath, ["src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 });
  if (result.status !== 0) throw new Error(`cli ${args[0]} failed: ${result.stderr}`);
  return result.stdout;
}

/** The q-quantile of `values` (sorted copy), e.g. 0.99. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
