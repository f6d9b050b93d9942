// Benchmark: argon2id logins saturating the CPU must not stall the event loop. While LOGIN_WORKERS
// clients log in back to back, a probe calls a cheap RPC (grpc.health.v1.Health/Check) every 10 ms and
// records its latency. Goal: probe p99 under 10 ms. Runs against the real gateway process on the
// embedded database (or MONGODB_URI), loopback only, bounded in time.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { quantile, runCli, startGatewayProcess } from "./gateway-process.ts";

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
    // Separate connections, as separate clients would have.
    const auth = createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` }));
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` }));

    const stopAt = Date.now() + DURATION_MS;
    let logins = 0;
    let loginErrors = 0;
    const workers = Array.from({ length: LOGIN_WORKERS }, async () => {
      while (Date.now() < stopAt) {
        await auth.login({ username: "bench-owner", password }).then(() => logins++, () => loginErrors++);
      }
    });
    const probes: number[] = [];
    const probe = (async () => {
      while (Date.now() < stopAt) {
        const started = performance.now();
        await health.check({});
        probes.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
      }
    })();
    await Promise.all([...workers, probe]);
    return {
      "logins/s (argon2id m=19 MiB t=2, 8 concurrent clients)": (logins / (DURATION_MS / 1000)).toFixed(1),
      "login errors": String(loginErrors),
      "health check during logins, p50 ms": quantile(probes, 0.5).toFixed(2),
      "health check during logins, p99 ms (goal < 10)": quantile(probes, 0.99).toFixed(2),
      "health check during logins, max ms": Math.max(...probes).toFixed(2),
    };
  } finally {
    await gateway.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
