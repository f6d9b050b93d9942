import { execFile } from "node:child_process";
import { auditSeqKey } from "../../src/store/audit-store.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditExportFormat, AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { SortOrder } from "../../gen/portcullis/v1/common_pb.js";
import { createKeyPair } from "../helpers/jwk.ts";
import { parseCsv } from "../../src/domain/audit/csv.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { collect, expectCode, userWithToken } from "../helpers/audit.ts";
import { startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

const run = promisify(execFile);
const CLI = new URL("../../src/cli/main.ts", import.meta.url).pathname;

/** `npm run -s cli -- audit verify …` as a child process: exit code and output. */
async function verifyCli(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, "audit", "verify", ...args], { timeout: 30_000 });
    return { code: 0, out: stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe("ExportAuditEvents and `audit verify`", () => {
  let gw: IdentityServer;
  let token = "";
  let dir = "";
  let jwksFile = "";
  const exportText = async (format: AuditExportFormat, request: Record<string, unknown> = {}) => {
    const messages = await collect(gw.client(AuditService, { token }).exportAuditEvents({ format, ...request }));
    expect(messages.length).toBeGreaterThan(0);
    for (const m of messages) expect(m.data.length).toBeLessThanOrEqual(64 * 1024);
    return { text: Buffer.concat(messages.map((m) => m.data)).toString("utf8"), first: messages[0]! };
  };
  const fileWith = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
    token = (await userWithToken(gw, "export-admin", "admin")).token;
    dir = await mkdtemp(join(tmpdir(), "portcullis-export-"));
    jwksFile = await fileWith("jwks.json", await (await fetch(`${gw.baseUrl}/.well-known/jwks.json`)).text());
    const nasty = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "'quoted", 'comma, "quote"\r\nnewline (controls are stripped on record)'];
    for (const [i, value] of nasty.entries()) {
      await gw.audit.recordNow({
        type: "export.nasty",
        outcome: "failure",
        reason: value,
        userAgent: value,
        actor: { kind: "user", id: `u${i}`, display: value },
        metadata: { note: value, n: i, flag: true },
      });
    }
    for (let i = 0; i < 300; i++) gw.audit.record({ type: "export.bulk", outcome: "success", ip: "192.0.2.1", metadata: { i, padding: "x".repeat(300) } });
    await gw.audit.flush();
  });
  afterAll(async () => {
    await gw?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("exports JSON Lines with sequence and hash per event and a signed manifest that verifies offline", async () => {
    const { text, first } = await exportText(AuditExportFormat.JSONL);
    expect(first.contentType).toBe("application/x-ndjson");
    expect(first.filename).toMatch(/\.jsonl$/);
    const lines = text.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(300);
    const event = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(event).toMatchObject({ sequence: "1" });
    expect(event["hash"]).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(lines.at(-1)!)).toHaveProperty("manifest");
    const file = await fileWith("all.jsonl", text);
    const ok = await verifyCli(file, "--jwks", jwksFile);
    expect(ok.out).toMatch(/^OK: \d+ events \(sequence 1 to \d+\)/);
    expect(ok.code).toBe(0);
    expect((await verifyCli(file, "--url", gw.baseUrl)).code).toBe(0);
  });

  it("finds each alteration of a JSONL export and names the first bad sequence", async () => {
    const { text } = await exportText(AuditExportFormat.JSONL);
    const lines = text.trimEnd().split("\n");
    const events = lines.slice(0, -1);
    const manifest = lines.at(-1)!;
    const seqOf = (line: string) => (JSON.parse(line) as { sequence: string }).sequence;
    const check = async (name: string, altered: string[]) => verifyCli(await fileWith(name, `${altered.join("\n")}\n`), "--jwks", jwksFile, "--json");

    const m = await check("modified.jsonl", [...events.slice(0, 4), events[4]!.replace(/"type":"[^"]+"/, '"type":"auth.nothing"'), ...events.slice(5), manifest]);
    expect(m.code).toBe(1);
    expect(JSON.parse(m.out)).toMatchObject({ ok: false, reason: "modified", sequence: Number(seqOf(events[4]!)), line: 5 });

    const d = await check("deleted.jsonl", [...events.slice(0, 10), ...events.slice(11), manifest]);
    expect(JSON.parse(d.out)).toMatchObject({ ok: false, reason: "deleted", sequence: Number(seqOf(events[10]!)) });

    const r = await check("reordered.jsonl", [...events.slice(0, 20), events[21]!, events[20]!, ...events.slice(22), manifest]);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, reason: "reordered", sequence: Number(seqOf(events[20]!)) });

    const inserted = events[30]!.replace(/"sequence":"\d+"/, `"sequence":"${Number(seqOf(events.at(-1)!)) + 1}"`);
    const i = await check("inserted.jsonl", [...events, inserted, manifest]);
    expect(JSON.parse(i.out)).toMatchObject({ ok: false, reason: "inserted", sequence: Number(seqOf(events.at(-1)!)) + 1 });

    const t = await check("truncated.jsonl", events.slice(0, 50));
    expect(JSON.parse(t.out)).toMatchObject({ ok: false, reason: "manifest" });

    // A manifest signed by anyone else does not verify against the gateway's keys.
    const other = await createKeyPair();
    const forgedJwks = await fileWith("other-jwks.json", JSON.stringify({ keys: [other.publicJwk] }));
    expect((await verifyCli(await fileWith("intact.jsonl", `${lines.join("\n")}\n`), "--jwks", forgedJwks)).code).toBe(1);
  });

  it("exports CSV (RFC 4180) with formula cells neutralised, and verifies it; a filtered export verifies too", async () => {
    const { text, first } = await exportText(AuditExportFormat.CSV, { filter: { types: ["export.nasty"] }, order: SortOrder.DESCENDING });
    expect(first.contentType).toBe("text/csv");
    const rows = parseCsv(text);
    expect(rows[0]).toContain("sequence");
    const body = rows.slice(1, -1);
    expect(body).toHaveLength(7);
    for (const row of body) for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    const reasons = body.map((row) => row[14]);
    expect(reasons).toContain(`'=HYPERLINK("http://evil","x")`);
    expect(reasons).toContain("'@SUM(A1)");
    expect(reasons).toContain("''quoted");
    expect(reasons).toContain('comma, "quote"newline (controls are stripped on record)');
    expect(text).toContain('"comma, ""quote""newline (controls are stripped on record)"');
    const file = await fileWith("nasty.csv", text);
    const ok = await verifyCli(file, "--jwks", jwksFile);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^OK: 7 events/);
    // One byte changed in one cell is found.
    const altered = await verifyCli(await fileWith("nasty-altered.csv", text.replace("'+1+1", "'+1+2")), "--jwks", jwksFile, "--json");
    expect(JSON.parse(altered.out)).toMatchObject({ ok: false, reason: "modified" });
  });

  it("refuses unknown formats and bad filters, and audits every export", async () => {
    const client = gw.client(AuditService, { token });
    await expectCode(collect(client.exportAuditEvents({})), Code.InvalidArgument);
    await expectCode(collect(client.exportAuditEvents({ format: 9 as AuditExportFormat })), Code.InvalidArgument);
    await expectCode(collect(client.exportAuditEvents({ format: AuditExportFormat.CSV, filter: { types: ["{$gt: 1}"] } })), Code.InvalidArgument);
    await expectCode(collect(gw.client(AuditService).exportAuditEvents({ format: AuditExportFormat.CSV })), Code.Unauthenticated);
    const exports = await gw.auditEvents("audit.export");
    expect(exports.length).toBeGreaterThanOrEqual(3);
    expect(exports.some((e) => (e["metadata"] as Record<string, string>)["types"] === "export.nasty" && (e["metadata"] as Record<string, string>)["format"] === "csv")).toBe(true);
  });

  it("finds tampering done straight in the database before the export", async () => {
    const events = gw.store.db.collection<Record<string, unknown> & { _id: string }>("audit_events");
    await gw.audit.flush();
    const original = await events.find().sort({ _id: 1 }).toArray();
    const restore = async () => {
      await events.deleteMany({});
      await events.insertMany(original);
    };
    const exportAndVerify = async () => {
      const { text } = await exportText(AuditExportFormat.JSONL, { filter: { endTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600) } } });
      const file = await fileWith("tampered-db.jsonl", text);
      return JSON.parse((await verifyCli(file, "--jwks", jwksFile, "--json")).out) as { ok: boolean; reason: string; sequence: number };
    };
    try {
      await events.updateOne({ _id: auditSeqKey(40) }, { $set: { reason: "rewritten" } });
      expect(await exportAndVerify()).toMatchObject({ ok: false, reason: "modified", sequence: 40 });
      await restore();
      const [x, y] = await events
        .find({ _id: { $in: [auditSeqKey(50), auditSeqKey(51)] } })
        .sort({ _id: 1 })
        .toArray();
      await events.deleteMany({ _id: { $in: [auditSeqKey(50), auditSeqKey(51)] } });
      await events.insertMany([
        { ...y!, _id: auditSeqKey(50) },
        { ...x!, _id: auditSeqKey(51) },
      ]);
      expect(await exportAndVerify()).toMatchObject({ ok: false, reason: "reordered", sequence: 50 });
      await restore();
      const head = original.at(-1)!;
      const forged: Record<string, unknown> & { _id: string } = { ...head, _id: auditSeqKey(Number(head._id) + 1), eventId: "forged:1", prevHash: head["hash"], seal: "forged" };
      const { chainHash, hashableFromRecord } = await import("../../src/domain/audit/audit-chain.ts");
      forged["hash"] = chainHash(String(head["hash"]), hashableFromRecord({ ...forged, _id: "forged:1" } as never));
      await events.insertOne(forged);
      expect(await exportAndVerify()).toMatchObject({ ok: false, reason: "inserted", sequence: Number(head._id) + 1 });
      await restore();
      // A deletion shows in an unfiltered export as a gap.
      await events.deleteOne({ _id: auditSeqKey(60) });
      const { text } = await exportText(AuditExportFormat.JSONL);
      const verdict = JSON.parse((await verifyCli(await fileWith("deleted-db.jsonl", text), "--jwks", jwksFile, "--json")).out) as unknown;
      expect(verdict).toMatchObject({ ok: false, reason: "deleted", sequence: 60 });
    } finally {
      await restore();
    }
  });

  it("usage errors exit 2", async () => {
    expect((await verifyCli()).code).toBe(2);
    expect((await verifyCli(join(dir, "all.jsonl"))).code).toBe(2);
  });
});
