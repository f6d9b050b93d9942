import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { JWK } from "jose";
import { verifyExportFile } from "../../../domain/audit/export-verification.ts";
import { CommandError, oneLine } from "../../command-error.ts";

const USAGE = `Usage: portcullis audit verify FILE (--jwks JWKS_FILE | --url GATEWAY_URL) [--json]

Checks an ExportAuditEvents file (JSON Lines or CSV) offline: the signature of its closing manifest
against the gateway's published keys, every event's hash, the links between consecutive events, the
order, and that no event was added or removed. Prints where the file was altered.

  --jwks FILE   The gateway's JWKS as saved from /.well-known/jwks.json or AuthService.GetJwks.
  --url URL     Fetch the JWKS from the gateway (its base URL, or the full JWKS URL).
  --json        Print the verdict as JSON.

Exit status: 0 intact, 1 altered or not verifiable, 2 bad usage.
`;

/** `audit verify FILE`: offline verification of an audit export; see {@link USAGE}. */
export async function auditVerify(args: string[]): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        strict: true,
        options: { jwks: { type: "string" }, url: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      });
    } catch (err) {
      throw new CommandError(`${oneLine(err)}; see --help`, 2);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new CommandError("give exactly one export FILE; see --help", 2);
    if ((values.jwks === undefined) === (values.url === undefined)) throw new CommandError("give either --jwks FILE or --url URL; see --help", 2);
    const text = await readFile(positionals[0]!, "utf8").catch(() => {
      throw new CommandError(`cannot read ${JSON.stringify(positionals[0]!.slice(0, 200))}`);
    });
    const keys = values.jwks !== undefined ? await jwksFromFile(values.jwks) : await jwksFromUrl(values.url!);
    const verdict = await verifyExportFile(text, keys);
    if (values.json) process.stdout.write(`${JSON.stringify(verdict)}\n`);
    else if (verdict.ok) {
      process.stdout.write(`OK: ${verdict.count} events (sequence ${verdict.firstSequence} to ${verdict.lastSequence}), manifest signed by key ${verdict.kid}\n`);
    } else {
      const where = [verdict.sequence !== undefined ? `sequence ${verdict.sequence}` : "", verdict.line !== undefined ? `line ${verdict.line}` : ""].filter(Boolean).join(", ");
      process.stdout.write(`ALTERED (${verdict.reason}${where ? `, first bad ${where}` : ""}): ${verdict.detail}\n`);
    }
    return verdict.ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`portcullis audit verify: ${oneLine(err)}\n`);
    return err instanceof CommandError ? err.exitCode : 1;
  }
}

async function jwksFromFile(path: string): Promise<JWK[]> {
  const text = await readFile(path, "utf8").catch(() => {
    throw new CommandError(`cannot read the JWKS file ${JSON.stringify(path.slice(0, 200))}`);
  });
  return keysOf(text);
}

async function jwksFromUrl(url: string): Promise<JWK[]> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new CommandError("--url must be an absolute http(s) URL", 2);
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") throw new CommandError("--url must be an absolute http(s) URL", 2);
  if (!target.pathname.endsWith(".json")) target = new URL("/.well-known/jwks.json", target);
  const response = await fetch(target, { signal: AbortSignal.timeout(10_000) }).catch(() => {
    throw new CommandError(`cannot fetch the JWKS from ${target.origin}`);
  });
  if (!response.ok) throw new CommandError(`fetching the JWKS from ${target.origin} answered HTTP ${response.status}`);
  return keysOf(await response.text());
}

function keysOf(text: string): JWK[] {
  try {
    const parsed = JSON.parse(text) as { keys?: unknown };
    if (Array.isArray(parsed.keys)) return parsed.keys as JWK[];
  } catch {
    // reported below
  }
  throw new CommandError("the JWKS is not a JSON object with a keys array");
}
