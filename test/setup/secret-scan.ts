import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MongoClient } from "mongodb";

export interface SecretScanResult {
  readonly secrets: number;
  readonly databases: number;
  readonly events: number;
  readonly logFiles: number;
  readonly leaks: string[];
}

/**
 * The whole-run secret scan: every secret the tests noted (test/helpers/secret-capture.ts) is searched
 * in every audit event of every test database (`t_*`) still on the server and in every saved log. A
 * secret shorter than 12 characters (a TOTP or backup code) counts only as a whole token, so digits
 * inside a hash or a timestamp are no match. Never reports the secret itself, only where it was found.
 */
export async function scanForSecrets(uri: string, dir: string): Promise<SecretScanResult> {
  const files = await readdir(dir);
  const secrets = new Set<string>();
  for (const file of files.filter((f) => f.startsWith("secrets-"))) {
    for (const line of (await readFile(join(dir, file), "utf8")).split("\n")) if (line) secrets.add(JSON.parse(line) as string);
  }
  const patterns = [...secrets].map((secret) => ({
    secret,
    test:
      secret.length >= 12
        ? (text: string) => text.includes(secret)
        : (
            (re) => (text: string) =>
              re.test(text)
          )(new RegExp(`(?<![A-Za-z0-9])${secret.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![A-Za-z0-9])`)),
  }));
  const leaks: string[] = [];
  const check = (text: string, where: string) => {
    for (const { test } of patterns) if (test(text)) leaks.push(where);
  };

  const client = new MongoClient(uri);
  let events = 0;
  let databases = 0;
  try {
    await client.connect();
    const { databases: all } = await client.db("admin").admin().listDatabases({ nameOnly: true });
    for (const { name } of all.filter((d) => d.name.startsWith("t_"))) {
      databases += 1;
      for await (const doc of client.db(name).collection("audit_events").find()) {
        events += 1;
        check(JSON.stringify(doc), `audit event ${String(doc["eventId"] ?? doc["_id"])} in ${name}`);
      }
    }
  } finally {
    await client.close();
  }
  const logs = files.filter((f) => f.startsWith("log-"));
  for (const file of logs) {
    const lines = (await readFile(join(dir, file), "utf8")).split("\n");
    for (const [i, line] of lines.entries()) check(line, `${file} line ${i + 1}`);
  }
  const result = { secrets: secrets.size, databases, events, logFiles: logs.length, leaks };
  await writeFile(new URL("../../test-results/secret-scan.json", import.meta.url), JSON.stringify({ ...result, leaks: leaks.slice(0, 100) }, null, 2)).catch(() => undefined);
  return result;
}

/** Throws (failing the run) on a leak, and when the scan could not have found one. */
export function assertNoLeaks(result: SecretScanResult): void {
  if (result.leaks.length > 0) throw new Error(`secret scan: ${result.leaks.length} secret(s) found in audit events or logs: ${result.leaks.slice(0, 10).join("; ")}`);
  if (result.secrets > 0 && result.events === 0) throw new Error("secret scan: secrets were used but no audit event was scanned; the scan is broken");
  if (result.events > 0 && result.secrets === 0) throw new Error("secret scan: audit events exist but no secret was noted; secret capture is broken");
}
