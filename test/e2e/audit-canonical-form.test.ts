import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AuditExportFormat, AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { canonicalHashInput, chainHash, type HashableAuditEvent } from "../../src/domain/audit/audit-chain.ts";
import { collect, userWithToken } from "../helpers/audit.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, type IdentityServer } from "../helpers/identity-server.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const VERIFIER = join(ROOT, "scripts", "verify-audit-export.py");
const PROTOCOLS: readonly WireProtocol[] = ["grpc", "grpc-web", "connect"];
const run = promisify(execFile);

/** The independent verifier: python3 is required (the test fails, never skips, without it). */
async function pythonVerify(exportFile: string, jwksFile: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run("python3", [VERIFIER, exportFile, jwksFile], { timeout: 60_000 });
    return { code: 0, out: stdout };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === "ENOENT") throw new Error("python3 is not on PATH: the canonical form cannot be checked by an independent implementation");
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/**
 * docs/audit-chain.md specifies the canonical form of an event, the chain and the export manifest so
 * that anyone can verify an export. scripts/verify-audit-export.py implements those rules in Python
 * with its standard library only, sharing no code with the gateway: it must accept the gateway's real
 * exports (JSON Lines and CSV, fetched over each protocol) and reject altered ones.
 */
describe("the documented canonical form, checked by an independent implementation", () => {
  let gw: IdentityServer;
  let token = "";
  let dir = "";
  let jwksFile = "";

  const exportFile = async (protocol: WireProtocol, format: AuditExportFormat, name: string) => {
    const chunks = await collect(gw.client(AuditService, { token, protocol }).exportAuditEvents({ format }));
    const path = join(dir, name);
    await writeFile(path, Buffer.concat(chunks.map((c) => c.data)));
    return path;
  };

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_RATE_LIMIT_CREDENTIAL: "1000" } });
    const admin = await userWithToken(gw, "canonical-admin", "admin");
    token = admin.token;
    dir = await mkdtemp(join(tmpdir(), "portcullis-canonical-"));
    jwksFile = join(dir, "jwks.json");
    await writeFile(jwksFile, await (await fetch(`${gw.baseUrl}/.well-known/jwks.json`)).text());

    // Events of every shape: users and API keys as actors (with on_behalf_of), targets, anonymous
    // failures, and metadata whose names need the UTF-16 order and whose values need escaping.
    await gw
      .client(AuthService)
      .login({ username: "canonical-admin", password: "wrong-password-entirely" })
      .catch(() => undefined);
    const key = await gw.client(ApiKeyService, { token }).createApiKey({ name: 'ops "blue" \\ 😀', scopes: ["keys.read", "keys.write", "ai.status"] });
    const byKey = await gw.client(ApiKeyService, { token: key.secret }).createApiKey({ name: "made by a key", scopes: ["ai.status"] });
    await gw.client(ApiKeyService, { token, protocol: "connect" }).revokeApiKey({ keyId: byKey.apiKey!.id, reason: '"quoted" and back\\slashed, ünïcödé' });
    // A lone surrogate cannot be stored (the database writes U+FFFD): the recorder replaces it before
    // hashing, so the event still verifies.
    await gw.audit.recordNow({ type: "test.lone_surrogate", outcome: "success", reason: "lone \ud800 surrogate", metadata: { ["k\udc00"]: "v\ud83d" } });
    await gw.audit.recordNow({
      type: "test.canonical",
      outcome: "failure",
      actor: { kind: "user", id: admin.userId, display: "canonical-admin" },
      target: { kind: "user", id: "" },
      reason: "tab\tand newline\nare stripped; é ü ß 中文 😀 / \u2028 stays",
      metadata: { équipe: "blue", "😀": "grin", "！": "bang", 'q"uote': 'va"l\\ue', empty: "", n: 1.5, big: 1e21, yes: true, Zed: "upper", zed: "lower" },
    });
    for (let i = 0; i < 40; i++) gw.audit.record({ type: "test.canonical_bulk", outcome: "success", metadata: { i } });
    await gw.audit.flush();
    expect((await gw.client(AuditService, { token }).verifyAuditChain({})).ok).toBe(true);
  });
  afterAll(async () => {
    await gw?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the worked example of docs/audit-chain.md is what the gateway hashes", async () => {
    const doc = await readFile(join(ROOT, "docs", "audit-chain.md"), "utf8");
    const section = doc.slice(doc.indexOf("**Worked example.**"));
    const line = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(section)![1]!.replace(/\n /g, "")) as Record<string, string> & {
      actor: Record<string, string>;
      target: { kind: string; id: string };
      metadata: Record<string, string>;
    };
    const canonical = /```text\n(.*)\n```/.exec(section)![1]!;
    expect([line.outcome, line.actor["kind"]]).toEqual(["AUDIT_OUTCOME_SUCCESS", "PRINCIPAL_KIND_API_KEY"]);
    const event: HashableAuditEvent = {
      id: line["id"]!,
      time: line["time"]!,
      type: line["type"]!,
      outcome: "success",
      actor: { kind: "api_key", id: line.actor["id"]!, display: line.actor["displayName"]!, onBehalfOf: line.actor["onBehalfOfUserId"]! },
      target: line.target,
      ip: line["ip"],
      requestId: line["requestId"],
      method: line["method"],
      metadata: line.metadata,
    };
    expect(canonicalHashInput(event)).toBe(canonical);
    expect(createHash("sha256").update(`${line["prevHash"]}\n${canonical}`, "utf8").digest("hex")).toBe(line["hash"]);
    expect(chainHash(line["prevHash"]!, event)).toBe(line["hash"]);
  });

  it.each(PROTOCOLS)("accepts the gateway's JSON Lines and CSV exports fetched over %s", async (protocol) => {
    for (const [format, name] of [
      [AuditExportFormat.JSONL, "jsonl"],
      [AuditExportFormat.CSV, "csv"],
    ] as const) {
      const file = await exportFile(protocol, format, `${protocol}.${name}`);
      const result = await pythonVerify(file, jwksFile);
      expect(result, name).toMatchObject({ code: 0 });
      const [, count, first, last] = /^OK: (\d+) events, sequences (\d+) to (\d+)\n$/.exec(result.out) ?? [];
      expect(Number(count)).toBeGreaterThan(45);
      expect(Number(first)).toBe(1);
      expect(Number(last) - Number(first) + 1).toBe(Number(count));
    }
  });

  it("rejects an export with an altered value, a deleted event or a forged manifest, naming where", async () => {
    const original = await readFile(await exportFile("grpc", AuditExportFormat.JSONL, "original.jsonl"), "utf8");
    const lines = original.trimEnd().split("\n");
    const victim = lines.findIndex((l) => l.includes('test.canonical"'));
    const seq = (JSON.parse(lines[victim]!) as { sequence: string }).sequence;
    const cases: Array<[string, string, RegExp]> = [
      ["altered", original.replace("stays", "stayz"), new RegExp(`^ALTERED \\(sequence ${seq}\\): event ${seq} does not match its hash`)],
      ["unicode", original.replace('"grin"', '"grín"'), new RegExp(`^ALTERED \\(sequence ${seq}\\)`)],
      ["deleted", `${[...lines.slice(0, victim), ...lines.slice(victim + 1)].join("\n")}\n`, new RegExp(`^ALTERED \\(sequence ${seq}\\): event ${seq} is missing`)],
      // A character inside the signature, not its last one: the last base64url character of a 64-byte
      // Ed25519 signature carries two padding bits, so changing only those leaves the signature intact.
      [
        "manifest",
        original.replace(/("manifest":"[^"]*)(.)([^"]{8})"/, (_, head: string, c: string, tail: string) => `${head}${c === "A" ? "B" : "A"}${tail}"`),
        /^ALTERED: manifest: the signature does not verify/,
      ],
      ["truncated", `${lines.slice(0, -1).join("\n")}\n`, /^ALTERED: the signed manifest is missing/],
    ];
    for (const [name, text, expected] of cases) {
      expect(text, name).not.toBe(original);
      const file = join(dir, `${name}.jsonl`);
      await writeFile(file, text);
      const result = await pythonVerify(file, jwksFile);
      expect(result.code, `${name}: ${result.out}`).toBe(1);
      expect(result.out, name).toMatch(expected);
    }
    const csv = await readFile(await exportFile("connect", AuditExportFormat.CSV, "original.csv"), "utf8");
    const alteredCsv = join(dir, "altered.csv");
    await writeFile(alteredCsv, csv.replace("stays", "stayz"));
    expect(await pythonVerify(alteredCsv, jwksFile)).toMatchObject({ code: 1, out: expect.stringMatching(/^ALTERED \(sequence \d+\): event \d+ does not match its hash/) });
  });
});
