import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AiService, JobExportFormat, JobStatus } from "../../gen/portcullis/v1/ai_pb.js";
import { parseCsv, restoreCell } from "../../src/domain/audit/csv.ts";
import { Code, failureOf, startAiGateway, startFakes, storeFakeCredentials, tokenFor } from "../helpers/ai-gateway.ts";
import { testDatabaseName } from "../helpers/database.ts";
import type { FakeKind, FakeProvider } from "../helpers/fake-providers.ts";
import type { IdentityServer } from "../helpers/identity-server.ts";
import { finished } from "../helpers/jobs.ts";

/** ExportJobs and event retention, through a real gateway and real clients. */
const dbName = testDatabaseName(import.meta.url);
let fakes: Record<FakeKind, FakeProvider>;
let gw: IdentityServer;
let alice: string;
let bob: string;
let dir: string;

async function download(token: string, request: { format: JobExportFormat; includeOutput?: boolean; status?: JobStatus }) {
  const chunks: Uint8Array[] = [];
  let contentType = "";
  let filename = "";
  for await (const message of gw.client(AiService, { token }).exportJobs(request)) {
    expect(message.data.length).toBeLessThanOrEqual(64 * 1024);
    if (chunks.length === 0) ({ contentType, filename } = message);
    chunks.push(message.data);
  }
  return { bytes: Buffer.concat(chunks), contentType, filename, messages: chunks.length };
}

/** Opens a ZIP with Python's standard zipfile module: names, contents, and its own integrity check. */
async function unzip(bytes: Buffer): Promise<Record<string, string>> {
  const file = join(dir, `export-${Date.now()}.zip`);
  await writeFile(file, bytes);
  const script = "import json,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps({n: z.read(n).decode('utf-8') for n in z.namelist()}))";
  return JSON.parse(execFileSync("python3", ["-c", script, file], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 })) as Record<string, string>;
}

const sha256 = (text: string) => createHash("sha256").update(Buffer.from(text, "utf8")).digest("hex");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "portcullis-job-export-"));
  fakes = await startFakes();
  gw = await startAiGateway(dbName, fakes, { PORTCULLIS_JOB_EXPORT_MAX_JOBS: "100", PORTCULLIS_RATE_LIMIT_DEFAULT: "1000000", PORTCULLIS_JOB_POLL_MAX_MS: "100", PORTCULLIS_JOB_CONCURRENCY: "8" });
  await storeFakeCredentials(gw, await tokenFor(gw, "owner", "owner"), fakes);
  alice = await tokenFor(gw, "alice", "user");
  bob = await tokenFor(gw, "bob", "user");
});

afterAll(async () => {
  await gw?.close();
  await fakes?.openai.close();
  await fakes?.anthropic.close();
  await rm(dir, { recursive: true, force: true });
});

describe("retention", () => {
  it("removes a finished job's events after the retention period: WatchJob is OUT_OF_RANGE, GetJob still answers", async () => {
    const ai = gw.client(AiService, { token: bob });
    const job = (await ai.submitJob({ provider: "local", prompt: "short-lived history" })).job!;
    await finished(ai, job.id);
    expect(await gw.gateway.runNow.sweepJobRetention(new Date())).toBe(0);
    expect(await gw.gateway.runNow.sweepJobRetention(new Date(Date.now() + 31 * 86_400_000))).toBeGreaterThan(0);
    expect((await failureOf(ai.watchJob({ jobId: job.id })[Symbol.asyncIterator]().next())).code).toBe(Code.OutOfRange);
    expect((await ai.getJob({ jobId: job.id })).job?.status).toBe(JobStatus.SUCCEEDED);
  });
});

describe("ExportJobs", () => {
  it("exports zero jobs in every format", async () => {
    const json = await download(alice, { format: JobExportFormat.JSON });
    expect(json).toMatchObject({ contentType: "application/json" });
    expect(JSON.parse(json.bytes.toString())).toEqual([]);
    expect((await download(alice, { format: JobExportFormat.JSONL })).bytes.length).toBe(0);
    const csv = parseCsv((await download(alice, { format: JobExportFormat.CSV })).bytes.toString());
    expect(csv).toHaveLength(1);
    expect(csv[0]![0]).toBe("id");
    const zip = await download(alice, { format: JobExportFormat.ZIP });
    expect(zip.contentType).toBe("application/zip");
    expect(zip.filename).toMatch(/^jobs-\d{8}T\d{6}Z\.zip$/);
    const files = await unzip(zip.bytes);
    expect(Object.keys(files).sort()).toEqual(["jobs.csv", "jobs.json", "manifest.json"]);
    expect(JSON.parse(files["manifest.json"]!)).toMatchObject({ jobs: 0 });
  });

  it("exports many jobs: the ZIP opens with a standard unzip, its manifest's hashes match, CSV formulas are neutralised, other users' jobs are absent", async () => {
    const ai = gw.client(AiService, { token: alice });
    const ids: string[] = [];
    // In rounds of 40, under the cap on unfinished jobs.
    for (let round = 0; round < 2; round++) {
      const batch = await Promise.all(
        Array.from({ length: 40 }, (_, j) => round * 40 + j).map(
          async (i) => (await ai.submitJob({ provider: "local", prompt: `export ${i} ${"x".repeat(i * 20)}`, idempotencyKey: i === 0 ? '=HYPERLINK("http://evil")' : "" })).job!.id,
        ),
      );
      await Promise.all(batch.map((id) => finished(ai, id)));
      ids.push(...batch);
    }
    ids.sort();
    fakes.openai.enqueue({ kind: "answer", words: ["+SUM(A1)", " and more"] });
    ids.push((await ai.submitJob({ prompt: "formula output", maxTokens: 5 })).job!.id);
    const bobs = (await gw.client(AiService, { token: bob }).submitJob({ provider: "local", prompt: "bob's secret plans" })).job!.id;
    for (const id of ids) await finished(ai, id);

    const zip = await download(alice, { format: JobExportFormat.ZIP, includeOutput: true });
    const files = await unzip(zip.bytes);
    const manifest = JSON.parse(files["manifest.json"]!) as { jobs: number; jobs_by_status: Record<string, number>; files: Array<{ name: string; sha256: string; bytes: number }> };
    expect(manifest.jobs).toBe(ids.length);
    expect(manifest.jobs_by_status).toEqual({ succeeded: ids.length });
    for (const entry of manifest.files) {
      expect(entry.sha256).toBe(sha256(files[entry.name]!));
      expect(entry.bytes).toBe(Buffer.byteLength(files[entry.name]!));
    }
    const jobs = JSON.parse(files["jobs.json"]!) as Array<{ id: string; status: string; outputText?: string }>;
    expect(jobs.map((j) => j.id)).toEqual([...ids].reverse());
    expect(jobs.every((j) => j.status === "JOB_STATUS_SUCCEEDED")).toBe(true);
    expect(jobs.some((j) => j.id === bobs)).toBe(false);
    const rows = parseCsv(files["jobs.csv"]!);
    expect(rows.map((r) => r[0])).toEqual(["id", ...[...ids].reverse()]);
    const header = rows[0]!;
    const keyCells = rows
      .slice(1)
      .map((r) => r[header.indexOf("idempotency_key")])
      .filter((cell) => cell !== "");
    expect(keyCells).toHaveLength(1);
    const keyCell = keyCells[0]!;
    expect(keyCell).toBe('\'=HYPERLINK("http://evil")');
    expect(restoreCell(keyCell)).toBe('=HYPERLINK("http://evil")');
    expect(rows[1]![header.indexOf("output_text")]).toBe("'+SUM(A1) and more");

    // The same jobs alone, as JSON, JSON Lines and CSV; without include_output, no output.
    const withOutput = await download(alice, { format: JobExportFormat.JSON, includeOutput: true });
    expect(withOutput.messages).toBeGreaterThan(1);
    expect(withOutput.bytes.toString()).toBe(files["jobs.json"]);
    const json = JSON.parse((await download(alice, { format: JobExportFormat.JSON })).bytes.toString()) as Array<{ id: string; outputText?: string }>;
    expect(json.map((j) => j.id)).toEqual([...ids].reverse());
    expect(json.every((j) => j.outputText === undefined)).toBe(true);
    const lines = (await download(alice, { format: JobExportFormat.JSONL, status: JobStatus.SUCCEEDED })).bytes.toString().trim().split("\n");
    expect(lines).toHaveLength(ids.length);
    expect((await download(alice, { format: JobExportFormat.CSV, status: JobStatus.FAILED })).bytes.toString().trim().split("\r\n")).toHaveLength(1);

    // Over the configured cap: refused before the first byte.
    const over = await Promise.all(Array.from({ length: 30 }, async (_, i) => (await ai.submitJob({ provider: "local", prompt: `over ${i}` })).job!.id));
    await Promise.all(over.map((id) => finished(ai, id)));
    expect((await failureOf(ai.exportJobs({ format: JobExportFormat.JSON })[Symbol.asyncIterator]().next())).code).toBe(Code.ResourceExhausted);
    expect(await gw.auditEvents("job.export")).not.toHaveLength(0);
  });
});
