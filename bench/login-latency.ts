// Benchmark: argon2id logins saturating the CPU must not stall the event loop. While LOGIN_WORKERS
// clients log in back to back, a probe calls a cheap RPC (grpc.health.v1.Health/Check) every 10 ms and
// records its latency. Goal: probe p99 under 10 ms. The same probe first runs with no logins at all:
// the machine's own floor. Runs against the real gateway process on the embedded database (or
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

/** Latency quantiles (ms) of Health/Check every PROBE_EVERY_MS for `durationMs`, by ghz or a Node client. */
async function probeHealth(port: number, durationMs: number, ghz: string | undefined, protoset: string): Promise<{ p50: number; p99: number; max: number }> {
  if (ghz) {
    const args = ["--insecure", "--protoset", protoset, "--call", "grpc.health.v1.Health/Check", "-d", "{}", "-c", "1", "--rps", String(1000 / PROBE_EVERY_MS), "-z", `${durationMs}ms`, "-O", "json", `127.0.0.1:${port}`];
    const { stdout } = await promisify(execFile)(ghz, args, { maxBuffer: 64 * 1024 * 1024, timeout: durationMs + 60_000 });
    const report = JSON.parse(stdout) as { slowest: number; latencyDistribution: Array<{ percentage: number; latency: number }> | null };
    const at = (p: number) => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? Number.NaN) / 1e6;
    return { p50: at(50), p99: at(99), max: report.slowest / 1e6 };
  }
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const probes: number[] = [];
  const stopAt = Date.now() + durationMs;
  while (Date.now() < stopAt) {
    const started = performance.now();
    await health.check({});
    probes.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
  }
  return { p50: quantile(probes, 0.5), p99: quantile(probes, 0.99), max: Math.max(...probes) };
}

const DURATION_MS = 10_000;
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
    const idle = await probeHealth(gateway.port, 5_000, ghz, protoset);

    const auth = createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` }));
    const stopAt = Date.now() + DURATION_MS;
    let logins = 0;
    let loginErrors = 0;
    const workers = Array.from({ length: LOGIN_WORKERS }, async () => {
      while (Date.now() < stopAt) {
        await auth.login({ username: "bench-owner", password }).then(() => logins++, () => loginErrors++);
      }
    });
    // Let the logins saturate the CPU before probing.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const [busy] = await Promise.all([probeHealth(gateway.port, DURATION_MS - 2_000, ghz, protoset), ...workers]);
    return {
      probe: ghz ? "ghz (Go), one call every 10 ms" : "Node client, one call every 10 ms (install Go for ghz)",
      "health check, no load: p50 / p99 / max ms": `${idle.p50.toFixed(2)} / ${idle.p99.toFixed(2)} / ${idle.max.toFixed(2)}`,
      [`logins/s (argon2id m=19 MiB t=2, ${LOGIN_WORKERS} concurrent clients)`]: (logins / (DURATION_MS / 1000)).toFixed(1),
      "login errors": String(loginErrors),
      "health check during logins, p50 ms": busy.p50.toFixed(2),
      "health check during logins, p99 ms (goal < 10)": busy.p99.toFixed(2),
      "health check during logins, max ms": busy.max.toFixed(2),
    };
  } finally {
    await gateway.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
