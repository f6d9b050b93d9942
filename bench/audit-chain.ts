// Benchmark: the audit log. (1) The chained write rate: events recorded through the real recorder and
// store (batched, hash-chained, sealed) by two writers at once, as two instances would; goal at least
// 2,000 events/s. (2) The delay from an event written on instance A (a failed Login, recorded before the
// RPC answers) to its arrival on instance B's WatchAuditEvents. Two real gateway processes share the
// embedded database (or MONGODB_URI) and key file; loopback only, bounded in time.
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuditService } from "../gen/portcullis/v1/audit_pb.js";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";
import { createChainSealer } from "../src/domain/audit/audit-chain.ts";
import { createAuditRecorder } from "../src/domain/audit/audit-recorder.ts";
import { createAuditStore } from "../src/store/audit-store.ts";
import { openStore } from "../src/store/mongo-store.ts";
import { quantile, runCli, startGatewayProcess } from "./gateway-process.ts";

const WRITE_EVENTS = Number(process.env["BENCH_AUDIT_EVENTS"] ?? 20_000);
const WATCH_SAMPLES = 100;

export async function benchAuditChain(): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-bench-audit-"));
  const dbName = `bench_audit_${process.pid}`;
  const env = { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_DB_NAME: dbName, PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000000", PORTCULLIS_RATE_LIMIT_DEFAULT: "1000000" };
  const a = await startGatewayProcess(env);
  const b = await startGatewayProcess(env);
  try {
    const uri = process.env["MONGODB_URI"] ?? (JSON.parse(await readFile(join(dataDir, "embedded-db.json"), "utf8")) as { uri: string }).uri;
    const writes = { ...(await chainedWriteRate(uri, `${dbName}_w1`, 1)), ...(await chainedWriteRate(uri, `${dbName}_w2`, 2)) };

    const output = runCli(["bootstrap-owner", "--username", "bench-auditor", "--generate"], env);
    const password = /: (\S+)\s*$/.exec(output)?.[1];
    if (!password) throw new Error("bootstrap-owner printed no password");
    const onA = createGrpcTransport({ baseUrl: `http://127.0.0.1:${a.port}` });
    const onB = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.port}` });
    const { accessToken } = await createClient(AuthService, onB).login({ username: "bench-auditor", password });
    const controller = new AbortController();
    const arrivals = new Map<string, number>();
    const stream = createClient(AuditService, onB).watchAuditEvents({ filter: { types: ["auth.login"] } }, { headers: { authorization: `Bearer ${accessToken}` }, signal: controller.signal });
    const reading = (async () => {
      for await (const message of stream) {
        if (message.payload.case === "event") arrivals.set(message.payload.value.requestId, performance.now());
      }
    })().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const auth = createClient(AuthService, onA);
    const delays: number[] = [];
    for (let i = 0; i < WATCH_SAMPLES; i++) {
      const requestId = randomUUID();
      // An unknown user: the failed login is recorded (durably) before the call answers.
      await auth.login({ username: `nobody-${randomBytes(4).toString("hex")}`, password: "wrong-password-123" }, { headers: { "x-request-id": requestId } }).catch(() => undefined);
      const answered = performance.now();
      const deadline = answered + 5_000;
      while (!arrivals.has(requestId) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
      const arrived = arrivals.get(requestId);
      delays.push(arrived === undefined ? Number.POSITIVE_INFINITY : Math.max(0, arrived - answered));
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80)); // idle gaps, so the poller backs off as in real use
    }
    controller.abort();
    await reading;
    return {
      ...writes,
      "watch delay A→B, p50 ms (goal < 250)": quantile(delays, 0.5).toFixed(1),
      "watch delay A→B, p95 ms": quantile(delays, 0.95).toFixed(1),
      "watch delay A→B, max ms": Math.max(...delays).toFixed(1),
      "watch events lost": String(delays.filter((d) => !Number.isFinite(d)).length),
    };
  } finally {
    await b.stop();
    await a.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `writers` recorders on their own stores (as instances) record WRITE_EVENTS events; returns the rate and whether the chain is dense. */
async function chainedWriteRate(uri: string, dbName: string, writers: number): Promise<Record<string, string>> {
  const store = await openStore({ uri, dbName });
  try {
    const sealer = createChainSealer(randomBytes(32));
    const recorders = Array.from({ length: writers }, () => createAuditRecorder({ store: createAuditStore(store, sealer), maxQueueSize: WRITE_EVENTS }));
    const started = performance.now();
    for (let i = 0; i < WRITE_EVENTS; i++) {
      recorders[i % writers]!.record({ type: "bench.event", outcome: "success", actor: { kind: "user", id: `user-${i % 50}` }, ip: "127.0.0.1", requestId: randomUUID(), metadata: { i } });
    }
    await Promise.all(recorders.map((w) => w.flush()));
    const seconds = (performance.now() - started) / 1000;
    const count = await store.db.collection("audit_events").countDocuments({});
    const newest = await store.db.collection<{ _id: string }>("audit_events").find({}).sort({ _id: -1 }).limit(1).toArray();
    // Every event links to the one stored before it: the writers' races left no fork and no broken link.
    const links = await store.db
      .collection<{ _id: string; prevHash: string; hash: string }>("audit_events")
      .find({}, { projection: { prevHash: 1, hash: 1 } })
      .sort({ _id: 1 })
      .toArray();
    const broken = links.slice(1).filter((doc, i) => doc.prevHash !== links[i]!.hash).length;
    const label = writers === 1 ? "1 writer (one instance; goal >= 2000)" : `${writers} writers racing for the head (${writers} instances)`;
    return {
      [`chained audit writes/s, ${label}`]: (WRITE_EVENTS / seconds).toFixed(0),
      [`  events stored / highest seq (${writers} writer(s))`]: `${count} / ${Number(newest[0]?._id ?? 0)}`,
      [`  links broken (${writers} writer(s); must be 0)`]: String(broken),
    };
  } finally {
    await store.db.dropDatabase();
    await store.close();
  }
}
