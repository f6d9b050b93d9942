// Benchmark: what authentication costs. One cheap authenticated RPC (AuthService/GetJwks, answered from
// memory; credentials sent to it are verified like anywhere else) driven at fixed concurrency against
// (1) a bare Connect server with no interceptors, (2) the gateway with a JWT, (3) the gateway with an API
// key. Goals: API key ≥ 0.85× bare, and within 10% of the JWT path. Loopback only, bounded in time.
//
// The load comes from ghz (Go; installed into the tools dir with `go install` when Go is present): a
// Node client would saturate its own core first and measure itself. Without Go, a Node client is used
// and the figures say so.
import { execFile, spawn, spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ApiKeyService } from "../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { promisify } from "node:util";
import { ensureGoTool } from "../src/tools/go-tool.ts";
import { quantile, runCli, startGatewayProcess } from "./gateway-process.ts";

const ROUND_MS = Number(process.env["BENCH_ROUND_MS"] ?? 3_000);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 5);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 16);

interface Round {
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

// With taskset (Linux, util-linux) and two or more cores, the server under test runs alone on one core
// and the load generator on another, so they do not take turns on the same core.
const SERVER_CPU = "1";
const LOAD_CPU = "0";
const pinning = availableParallelism() >= 2 && spawnSync("taskset", ["-c", LOAD_CPU, "true"]).status === 0;

/** Pins every thread of a running process to one core (best effort). */
function pinProcess(pid: number | undefined, cpu: string): void {
  if (pinning && pid !== undefined) spawnSync("taskset", ["-a", "-p", "-c", cpu, String(pid)], { stdio: "ignore" });
}

/** One round driven by ghz: its JSON report's rate and latency distribution. */
async function driveWithGhz(ghz: string, protoset: string, port: number, headers: Record<string, string>): Promise<Round> {
  const args = ["--insecure", "--protoset", protoset, "--call", "portcullis.v1.AuthService/GetJwks", "-d", "{}", "-c", String(CONCURRENCY), "--connections", "1"];
  args.push("-z", `${ROUND_MS}ms`, "--skipFirst", "200", "-O", "json", "-m", JSON.stringify(headers), `127.0.0.1:${port}`);
  const [command, commandArgs] = pinning ? ["taskset", ["-c", LOAD_CPU, ghz, ...args]] : [ghz, args];
  const { stdout } = await promisify(execFile)(command, commandArgs, { maxBuffer: 64 * 1024 * 1024, timeout: ROUND_MS + 60_000 });
  const report = JSON.parse(stdout) as { rps: number; latencyDistribution: Array<{ percentage: number; latency: number }> | null; statusCodeDistribution: Record<string, number> };
  const at = (p: number) => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? Number.NaN) / 1e6;
  // At the end of a timed run ghz closes its connection under the calls in flight (at most one per
  // concurrent worker): those end Canceled or Unavailable ("transport is closing") and are not failures.
  const cutOff = (report.statusCodeDistribution["Canceled"] ?? 0) + (report.statusCodeDistribution["Unavailable"] ?? 0);
  const others = Object.entries(report.statusCodeDistribution).reduce((sum, [code, n]) => sum + (["OK", "Canceled", "Unavailable"].includes(code) ? 0 : n), 0);
  const errors = others + Math.max(0, cutOff - CONCURRENCY);
  return { perSecond: report.rps, p50: at(50), p99: at(99), errors };
}

async function drive(client: Client<typeof AuthService>, headers: Record<string, string>): Promise<Round> {
  // Warm up (connection, JIT, caches), then measure.
  const warmUntil = Date.now() + 500;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < warmUntil) await client.getJwks({}, { headers });
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const stopAt = Date.now() + ROUND_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < stopAt) {
        const t = performance.now();
        try {
          await client.getJwks({}, { headers });
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: latencies.length / seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), errors };
}

/** The round with the median throughput. */
function medianRound(results: Round[]): Round {
  return [...results].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(results.length / 2)]!;
}

async function startBareServer(): Promise<{ port: number; pid: number | undefined; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [new URL("./bare-server.ts", import.meta.url).pathname], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => resolve((JSON.parse(line) as { port: number }).port));
    void exited.then(() => reject(new Error("bare server exited")));
  });
  return {
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export async function benchAuthThroughput(): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bench-"));
  const env = {
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_DB_NAME: `bench_auth_${process.pid}`,
    PORTCULLIS_RATE_LIMIT_CREDENTIAL: "10000000",
    PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE: "10000000",
    PORTCULLIS_RATE_LIMIT_DEFAULT: "10000000",
  };
  const gateway = await startGatewayProcess(env);
  const bare = await startBareServer();
  pinProcess(gateway.child.pid, SERVER_CPU);
  pinProcess(bare.pid, SERVER_CPU);
  try {
    const output = runCli(["bootstrap-owner", "--username", "bench-owner", "--generate"], env);
    const password = /: (\S+)\s*$/.exec(output)?.[1];
    if (!password) throw new Error("bootstrap-owner printed no password");
    const gatewayUrl = `http://127.0.0.1:${gateway.port}`;
    const auth = createClient(AuthService, createGrpcTransport({ baseUrl: gatewayUrl }));
    const { accessToken } = await auth.login({ username: "bench-owner", password });
    const keys = createClient(
      ApiKeyService,
      createGrpcTransport({
        baseUrl: gatewayUrl,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${accessToken}`);
            return next(req);
          },
        ],
      }),
    );
    const { secret } = await keys.createApiKey({ name: "bench", scopes: ["keys.read"] });
    const bareClient = createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${bare.port}` }));
    const ghz = await ensureGoTool("ghz", "github.com/bojand/ghz/cmd/ghz").catch(() => undefined);
    const protoset = join(dataDir, "portcullis.protoset");
    await writeFile(protoset, Buffer.from(await readFile(new URL("../gen/descriptor-set.b64", import.meta.url), "utf8"), "base64"));

    const paths: Array<[string, Client<typeof AuthService>, number, Record<string, string>]> = [
      ["bare Connect server", bareClient, bare.port, {}],
      ["gateway, JWT", auth, gateway.port, { authorization: `Bearer ${accessToken}` }],
      ["gateway, API key", auth, gateway.port, { authorization: `Bearer ${secret}` }],
    ];
    // Interleaved rounds, median of each: noise on a shared 2-core machine (the load generator competes
    // with the server for the cores) hits every path alike, and the median shrugs off a disturbed round.
    const rounds = new Map<string, Round[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, client, port, headers] of paths) {
        const result = ghz ? await driveWithGhz(ghz, protoset, port, headers) : await drive(client, headers);
        if (result.errors > 0) throw new Error(`${name}: ${result.errors} failed calls`);
        rounds.set(name, [...(rounds.get(name) ?? []), result]);
      }
    }
    const figures: Record<string, string> = {
      "load generator": ghz ? `ghz (Go), ${ROUNDS} interleaved rounds of ${ROUND_MS} ms, medians` : "Node client (install Go for ghz)",
      cores: pinning ? `server on CPU ${SERVER_CPU}, load on CPU ${LOAD_CPU} (taskset)` : "shared (no taskset)",
    };
    const best = new Map([...rounds].map(([name, results]) => [name, medianRound(results)]));
    for (const [name, result] of best) {
      figures[`${name}: calls/s (concurrency ${CONCURRENCY})`] = result.perSecond.toFixed(0);
      figures[`${name}: p50 / p99 ms`] = `${result.p50.toFixed(2)} / ${result.p99.toFixed(2)}`;
    }
    const rate = (name: string) => best.get(name)!.perSecond;
    figures["API key / bare (goal ≥ 0.85)"] = (rate("gateway, API key") / rate("bare Connect server")).toFixed(2);
    figures["API key / JWT (goal ≥ 0.90)"] = (rate("gateway, API key") / rate("gateway, JWT")).toFixed(2);
    return figures;
  } finally {
    await bare.stop();
    await gateway.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
