import { spawn, type ChildProcess } from "node:child_process";
import { testSealer } from "../helpers/test-sealer.ts";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createPortcullisClient, createPortcullisTransport } from "../../clients/connect-node.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { createAuditStore } from "../../src/store/audit-store.ts";
import { openStore } from "../../src/store/mongo-store.ts";
import { testDatabaseName } from "../helpers/database.ts";

const ROOT = new URL("../..", import.meta.url);

interface RunningGateway {
  readonly child: ChildProcess;
  readonly port: number;
  readonly lines: Array<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

/** Runs `node src/main.ts` as the start command does and waits for its "listening" line. */
async function startGateway(env: Record<string, string>): Promise<RunningGateway> {
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: ROOT,
    env: { PATH: process.env["PATH"], HOME: process.env["HOME"], PORTCULLIS_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      lines.push(parsed);
      if (typeof parsed["msg"] === "string" && parsed["msg"].startsWith("listening on")) resolve(parsed["port"] as number);
    });
    void exited.then((code) => reject(new Error(`gateway exited with ${code} before listening: ${stderr}${JSON.stringify(lines)}`)));
  });
  return { child, port, lines, exited };
}

describe("the gateway process", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portcullis-process-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("starts, serves, and on SIGTERM finishes streams, flushes the audit log and exits 0", async () => {
    const uri = inject("mongodbUri");
    const dbName = testDatabaseName(import.meta.url);
    const gateway = await startGateway({
      MONGODB_URI: uri,
      PORTCULLIS_DB_NAME: dbName,
      PORTCULLIS_DATA_DIR: join(dataDir, "external"),
      PORTCULLIS_SHUTDOWN_TIMEOUT_MS: "1000",
    });
    const store = await openStore({ uri, dbName });
    try {
      expect((await stat(join(dataDir, "external", "keys.json"))).mode & 0o777).toBe(0o600);
      const healthz = await fetch(`http://127.0.0.1:${gateway.port}/healthz`);
      expect(healthz.status).toBe(200);

      const health = createPortcullisClient(Health, createPortcullisTransport({ baseUrl: `http://127.0.0.1:${gateway.port}`, protocol: "grpc" }));
      const seen: Status[] = [];
      const watching = (async () => {
        for await (const update of health.watch({ service: "" })) {
          seen.push(update.status);
          if (seen.length === 1) gateway.child.kill("SIGTERM");
        }
      })().catch((e: unknown) => ConnectError.from(e));
      expect(await gateway.exited).toBe(0);
      await watching;
      expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);

      const audit = createAuditStore(store, testSealer);
      expect(await audit.count({ type: "system.start" })).toBe(1);
      expect(await audit.count({ type: "system.stop" })).toBe(1); // written during shutdown, not lost
      expect(gateway.lines.some((l) => l["msg"] === "stopped")).toBe(true);
    } finally {
      gateway.child.kill("SIGKILL");
      await store.db.dropDatabase();
      await store.close();
    }
  });

  it("provisions the embedded database on its own, and its data survives a restart", async () => {
    const env = { PORTCULLIS_DATA_DIR: join(dataDir, "embedded") };
    const first = await startGateway(env);
    expect(first.lines.some((l) => l["msg"] === "embedded database: ferretdb" || l["msg"] === "embedded database: mongod")).toBe(true);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    const second = await startGateway(env);
    try {
      const state = JSON.parse(await readFile(join(dataDir, "embedded", "embedded-db.json"), "utf8")) as { uri: string };
      const store = await openStore({ uri: state.uri, dbName: "portcullis" });
      try {
        // The first run's start and stop events are still there, next to the second run's start.
        // (the second start event is batched: poll until it is flushed)
        await expect.poll(() => createAuditStore(store, testSealer).count({ type: "system.start" }), { timeout: 5_000 }).toBe(2);
        expect(await createAuditStore(store, testSealer).count({ type: "system.stop" })).toBe(1);
      } finally {
        await store.close();
      }
    } finally {
      second.child.kill("SIGTERM");
      expect(await second.exited).toBe(0);
    }
  }, 240_000);
});
