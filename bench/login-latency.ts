// Benchmark: argon2id logins saturating the CPU must not stall the event loop. While LOGIN_WORKERS
// clients log in back to back, a probe calls a cheap RPC (grpc.health.v1.Health/Check) every 10 ms and
// records its latency. Goal: probe p99 under 10 ms. The same probe first runs with no logins at all
// (after a warm-up): the machine's own floor. Runs against the real gateway process on the embedded database (or
// MONGODB_URI), loopback only, bounded in time. The probe is ghz (Go) when Go is present — a Node probe
// adds its own event-loop and GC pauses to what it measures — else a Node client.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { promisify } from "node:util";
import { ensureGoTool } from "../src/tools/go-tool.ts";
import { quantile, runCli, startGatewayProcess } from "./gateway-process.ts";

/** Latencies (ms) of Health/Check every PROBE_EVERY_MS for `durationMs`, by ghz or a Node client; failed calls count as errors. */
async function probeHealth(port: number, durationMs: number, ghz: string | undefined, protoset: string): Promise<{ latencies: number[]; errors: string[] }> {
  if (ghz) {
    const args = [
      "--insecure",
      "--protoset",
      protoset,
      "--call",
      "grpc.health.v1.Health/Check",
      "-d",
      "{}",
      "-c",
      "1",
      "--rps",
      String(1000 / PROBE_EVERY_MS),
      "-z",
      `${durationMs}ms`,
      "-O",
      "json",
      `127.0.0.1:${port}`,
    ];
    const { stdout } = await promisify(execFile)(ghz, args, { maxBuffer: 64 * 1024 * 1024, timeout: durationMs + 60_000 });
    const report = JSON.parse(stdout) as { details: Array<{ latency: number; status: string; error: string }> | null };
    // When its time is up ghz closes its connection under the calls still in flight ("Canceled",
    // "transport is closing" — it does so against a bare Node server too): those are not the gateway's.
    const details = (report.details ?? []).filter((d) => d.status !== "Canceled" && !d.error.includes("transport is closing"));
    return { latencies: details.filter((d) => d.status === "OK").map((d) => d.latency / 1e6), errors: details.filter((d) => d.status !== "OK").map((d) => `${d.status}: ${d.error}`) };
  }
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const latencies: number[] = [];
  const errors: string[] = [];
  const stopAt = Date.now() + durationMs;
  while (Date.now() < stopAt) {
    const started = performance.now();
    await health.check({}).then(
      () => latencies.push(performance.now() - started),
      (error: unknown) => errors.push(String(error)),
    );
    await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
  }
  return { latencies, errors };
}

const summary = (ms: number[]) => `${quantile(ms, 0.5).toFixed(2)} / ${quantile(ms, 0.99).toFixed(2)} / ${Math.max(...ms).toFixed(2)}`;

// The probe runs in ROUNDS windows of WINDOW_MS while the logins go on; the p99 is taken over all their
// samples pooled (2,400 at the defaults), and each window's own p99 is shown to expose this VM's noise.
const ROUNDS = 3;
const WINDOW_MS = 8_000;
const LOGIN_WORKERS = Number(process.env["BENCH_LOGIN_WORKERS"] ?? 8);
const PROBE_EVERY_MS = 10;

export async function benchLoginLatency(): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bench-"));
  const env = { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_DB_NAME: `bench_login_${process.pid}`, PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000000", PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE: "1000000" };
  const gateway = await startGatewayProcess(env);
  try {
    const output = runCli(["bootstrap-owner", "--username", "bench-owner", "--generate"], env);
    const password = /: (\S+)\s*$/.exec(output)?.[1];
    if (!password) throw new Error("bootstrap-owner printed no password");
    const ghz = await ensureGoTool("ghz", "github.com/bojand/ghz/cmd/ghz").catch(() => undefined);
    const protoset = join(dataDir, "portcullis.protoset");
    await writeFile(protoset, Buffer.from(await readFile(new URL("../gen/descriptor-set.b64", import.meta.url), "utf8"), "base64"));
    // The first calls pay for JIT compilation; the idle figure is the warm server's floor.
    await probeHealth(gateway.port, 2_000, ghz, protoset);
    const idle = await probeHealth(gateway.port, 5_000, ghz, protoset);

    const auth = createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` }));
    let loggingIn = true;
    let logins = 0;
    let loginErrors = 0;
    const workers = Array.from({ length: LOGIN_WORKERS }, async () => {
      while (loggingIn) {
        await auth.login({ username: "bench-owner", password }).then(
          () => logins++,
          () => loginErrors++,
        );
      }
    });
    // Let the logins saturate the CPU before probing.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const loginsBefore = logins;
    const started = performance.now();
    const windows: Array<{ latencies: number[]; errors: string[] }> = [];
    for (let round = 0; round < ROUNDS; round++) windows.push(await probeHealth(gateway.port, WINDOW_MS, ghz, protoset));
    const loginsPerSecond = (logins - loginsBefore) / ((performance.now() - started) / 1000);
    loggingIn = false;
    await Promise.all(workers);
    const busy = windows.flatMap((w) => w.latencies);
    return {
      probe: ghz ? "ghz (Go), one call every 10 ms" : "Node client, one call every 10 ms (install Go for ghz)",
      "health check, no load: p50 / p99 / max ms": summary(idle.latencies),
      [`logins/s (argon2id m=19 MiB t=2, ${LOGIN_WORKERS} concurrent clients)`]: loginsPerSecond.toFixed(1),
      "login errors": String(loginErrors),
      "health check errors": [...idle.errors, ...windows.flatMap((w) => w.errors)].join(", ") || "0",
      [`health check during logins, p50 / p99 / max ms (${busy.length} calls)`]: summary(busy),
      "health check during logins, p99 goal": "< 10 ms",
      [`p99 of each ${WINDOW_MS / 1000} s window, ms`]: windows.map((w) => quantile(w.latencies, 0.99).toFixed(2)).join(", "),
    };
  } finally {
    await gateway.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
