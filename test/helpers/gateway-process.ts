import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

const ROOT = new URL("../..", import.meta.url);

export interface GatewayChild {
  readonly child: ChildProcess;
  readonly port: number;
  readonly baseUrl: string;
  /** Every log line so far, parsed. */
  readonly lines: Array<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  /** The raw log, for the secret scan. */
  log(): string;
}

/** Runs `node src/main.ts` (what `npm start` runs) with `env`, and waits for its "listening" line. */
export async function startGatewayChild(env: Record<string, string>): Promise<GatewayChild> {
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: ROOT,
    env: { PATH: process.env["PATH"], HOME: process.env["HOME"], PORTCULLIS_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  let raw = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      raw += `${line}\n`;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        lines.push(parsed);
        if (typeof parsed["msg"] === "string" && parsed["msg"].startsWith("listening on")) resolve(parsed["port"] as number);
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`gateway exited with ${code} before listening: ${stderr}`)));
  });
  return { child, port, baseUrl: `http://127.0.0.1:${port}`, lines, exited, log: () => raw };
}
