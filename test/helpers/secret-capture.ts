import { appendFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Interceptor } from "@connectrpc/connect";
import { inject } from "vitest";

/**
 * The whole-run secret scan's collection side: every secret a test sends or receives through the
 * helpers' clients (passwords, MFA and backup codes, access and refresh tokens, TOTP secrets, API keys)
 * is appended to a file in the run directory; server logs are saved there too. The global teardown
 * (test/setup/global-database.ts) then fails the run if any audit event of any test database, or any
 * log line, contains one of them.
 */
const SECRET_FIELDS = new Set([
  "password",
  "newPassword",
  "currentPassword",
  "mfaCode",
  "totpCode",
  "code",
  "refreshToken",
  "accessToken",
  "token",
  "secret",
  "backupCodes",
  "apiKey",
  "key",
  "plaintextKey",
]);

function secretsDir(): string | undefined {
  try {
    return inject("secretsDir");
  } catch {
    return undefined;
  }
}

/** Records one secret (strings shorter than 6 characters are too short to search for meaningfully). */
export function noteSecret(value: unknown): void {
  const dir = secretsDir();
  if (!dir) return;
  const values = Array.isArray(value) ? value : [value];
  const lines = values.filter((v): v is string => typeof v === "string" && v.length >= 6).map((v) => `${JSON.stringify(v)}\n`);
  if (lines.length > 0) appendFileSync(join(dir, `secrets-${process.pid}.jsonl`), lines.join(""));
}

function noteFields(message: unknown): void {
  if (message === null || typeof message !== "object") return;
  for (const [field, value] of Object.entries(message)) {
    if (SECRET_FIELDS.has(field)) noteSecret(value);
    else if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) noteFields(value);
  }
}

/** A client interceptor noting the secrets of every unary request and response. */
export const captureSecrets: Interceptor = (next) => async (req) => {
  if (!req.stream) noteFields(req.message);
  const res = await next(req);
  if (!res.stream) noteFields(res.message);
  return res;
};

/** Saves a server's log text for the scan. */
export async function saveLog(name: string, text: string): Promise<void> {
  const dir = secretsDir();
  if (dir && text.length > 0) await writeFile(join(dir, `log-${name}-${process.pid}-${Date.now()}.txt`), text);
}
