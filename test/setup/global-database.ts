import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedDatabase } from "../../src/store/embedded-db/index.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** The MongoDB every test file connects to; read it with `inject("mongodbUri")`. */
    mongodbUri: string;
  }
}

/**
 * Vitest global setup: one database server for the whole run. MONGODB_URI wins when set (CI against a
 * real MongoDB); otherwise an embedded server in a throwaway directory, removed afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env["MONGODB_URI"];
  if (external) {
    project.provide("mongodbUri", external);
    return async () => undefined;
  }
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-test-db-"));
  const database = await startEmbeddedDatabase({ dataDir, log: (line) => console.log(`[test database] ${line}`) });
  project.provide("mongodbUri", database.uri);
  return async () => {
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
