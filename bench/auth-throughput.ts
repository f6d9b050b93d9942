// Benchmark: what authentication costs. Two cheap authenticated RPCs — AuthService/GetJwks (answered
// from memory; credentials sent to it are verified like anywhere else) and AuthService/WhoAmI (the
// principal and the user's profile, from memory) — driven over gRPC at fixed concurrency against
// (1) a bare Connect server with no interceptors, (2) the gateway with a JWT, (3) the gateway with an API
// key. Goals: API key ≥ 0.85× bare, and within 10% of the JWT path. Loopback only, bounded in time.
// The "hot path" benchmark (hot-path.ts) covers both protocols, two concurrencies and the idle tail.
//
// The load comes from ghz (Go; installed into the tools dir with `go install` when Go is present): a
// Node client would saturate its own core first and measure itself. Without Go, a Node client is used
// and the figures say so.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ApiKeyService } from "../gen/portcullis/v1/api_key_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { ensureGoTool } from "../src/tools/go-tool.ts";
import { quantile, runCli, startGatewayProcess } from "./gateway-process.ts";
import { ghzRound, LOAD_CPU, pinning, pinProcessTree, type Round, SERVER_CPU, startBareServer } from "./load.ts";

const ROUND_MS = Number(process.env["BENCH_ROUND_MS"] ?? 3_000);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 5);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 16);

const METHODS = ["GetJwks", "WhoAmI"] as const;
type Method = (typeof METHODS)[number];

async function drive(client: Client<typeof AuthService>, method: Method, headers: Record<string, string>): Promise<Round> {
  const call = () => (method === "WhoAmI" ? client.whoAmI({}, { headers }) : client.getJwks({}, { headers }));
  // Warm up (connection, JIT, caches), then measure.
  const warmUntil = Date.now() + 500;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < warmUntil) await call();
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
          await call();
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
  pinProcessTree(gateway.child.pid, SERVER_CPU);
  let bare: Awaited<ReturnType<typeof startBareServer>> | undefined;
  try {
    const output = runCli(["bootstrap-owner", "--username", "bench-owner", "--generate"], env);
    const password = /: (\S+)\s*$/.exec(output)?.[1];
    if (!password) throw new Error("bootstrap-owner printed no password");
    const gatewayUrl = `http://127.0.0.1:${gateway.port}`;
    const auth = createClient(AuthService, createGrpcTransport({ baseUrl: gatewayUrl }));
    const { accessToken } = await auth.login({ username: "bench-owner", password });
    const bearer = { authorization: `Bearer ${accessToken}` };
    const { secret } = await createClient(ApiKeyService, createGrpcTransport({ baseUrl: gatewayUrl })).createApiKey({ name: "bench", scopes: ["keys.read"] }, { headers: bearer });
    // The bare server answers WhoAmI with what the gateway answers, so both send the same bytes.
    const whoAmI = await fetch(`${gatewayUrl}/portcullis.v1.AuthService/WhoAmI`, { method: "POST", headers: { ...bearer, "content-type": "application/json" }, body: "{}" });
    bare = await startBareServer(await whoAmI.text());
    pinProcessTree(bare.pid, SERVER_CPU);
    const bareClient = createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${bare.port}` }));
    const ghz = await ensureGoTool("ghz", "github.com/bojand/ghz/cmd/ghz").catch(() => undefined);
    const protoset = join(dataDir, "portcullis.protoset");
    await writeFile(protoset, Buffer.from(await readFile(new URL("../gen/descriptor-set.b64", import.meta.url), "utf8"), "base64"));

    const paths: Array<[string, Client<typeof AuthService>, number, Record<string, string>]> = [
      ["bare Connect server", bareClient, bare.port, {}],
      ["gateway, JWT", auth, gateway.port, bearer],
      ["gateway, API key", auth, gateway.port, { authorization: `Bearer ${secret}` }],
    ];
    // Interleaved rounds, median of each: noise on a shared 2-core machine (the load generator competes
    // with the server for the cores) hits every path alike, and the median shrugs off a disturbed round.
    const rounds = new Map<string, Round[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const method of METHODS) {
        for (const [name, client, port, headers] of paths) {
          const result = ghz
            ? await ghzRound({ ghz, protoset, port, method: `portcullis.v1.AuthService/${method}`, headers, concurrency: CONCURRENCY, durationMs: ROUND_MS })
            : await drive(client, method, headers);
          if (result.errors > 0) throw new Error(`${name} ${method}: ${result.errors} failed calls`);
          rounds.set(`${method}, ${name}`, [...(rounds.get(`${method}, ${name}`) ?? []), result]);
        }
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
    for (const method of METHODS) {
      figures[`${method}: API key / bare (goal ≥ 0.85)`] = (rate(`${method}, gateway, API key`) / rate(`${method}, bare Connect server`)).toFixed(2);
      figures[`${method}: JWT / bare (goal ≥ 0.85)`] = (rate(`${method}, gateway, JWT`) / rate(`${method}, bare Connect server`)).toFixed(2);
      figures[`${method}: API key / JWT (goal ≥ 0.90)`] = (rate(`${method}, gateway, API key`) / rate(`${method}, gateway, JWT`)).toFixed(2);
    }
    return figures;
  } finally {
    await bare?.stop();
    await gateway.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
