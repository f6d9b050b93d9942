import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedDatabase } from "../../src/embedded-db/index.ts";
import { assertNoLeaks, scanForSecrets } from "./secret-scan.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** The MongoDB every test file connects to; read it with `inject("mongodbUri")`. */
    mongodbUri: string;
    /** Where tests note the secrets they use and save server logs, for the whole-run secret scan. */
    secretsDir: string;
  }
}

/**
 * Vitest global setup: one database server for the whole run. MONGODB_URI wins when set (CI against a
 * real MongoDB); otherwise an embedded server in a throwaway directory, removed afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const secretsDir = await mkdtemp(join(tmpdir(), "portcullis-test-secrets-"));
  project.provide("secretsDir", secretsDir);
  // After every test file: no secret the run used may be in an audit event or a log line. A leak
  // throws here, which fails the run (vitest exits non-zero and prints the places, never the secrets).
  const scan = async (uri: string) => {
    try {
      const result = await scanForSecrets(uri, secretsDir);
      console.log(`[secret scan] ${result.secrets} secrets, ${result.events} audit events in ${result.databases} databases, ${result.logFiles} logs: ${result.leaks.length} leaks`);
      assertNoLeaks(result);
    } finally {
      await rm(secretsDir, { recursive: true, force: true });
    }
  };
  const external = process.env["MONGODB_URI"];
  if (external) {
    project.provide("mongodbUri", external);
    return () => scan(external);
  }
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-test-db-"));
  const database = await startEmbeddedDatabase({ dataDir, log: (line) => console.log(`[test database] ${line}`) });
  project.provide("mongodbUri", database.uri);
  return async () => {
    try {
      await scan(database.uri);
    } finally {
      await database.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  };
}
