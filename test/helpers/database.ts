import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, inject } from "vitest";
import { openStore, type Store } from "../../src/store/mongo-store.ts";

const MAX_NAME_LENGTH = 38;

/**
 * A database name unique to one test file and run: `t_<file basename>_<random>`, at most 38 characters
 * of `[a-z0-9_]` (FerretDB's limit is the strictest), so files never see each other's data.
 */
export function testDatabaseName(fileUrlOrName: string): string {
  const path = fileUrlOrName.startsWith("file:") ? fileURLToPath(fileUrlOrName) : fileUrlOrName;
  const suffix = randomBytes(4).toString("hex");
  const base = basename(path)
    .replace(/\.test\.ts$|\.ts$/, "")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .slice(0, MAX_NAME_LENGTH - "t__".length - suffix.length);
  return `t_${base}_${suffix}`;
}

/** The store of {@link useTestStore}; `store` may be read only inside tests and hooks. */
export interface TestStore {
  readonly store: Store;
  readonly uri: string;
  readonly dbName: string;
}

/**
 * Opens a Store on a fresh database for this test file before its tests, and drops the database and
 * closes the store after them. Call at the top level of a test file: `const db = useTestStore(import.meta.url)`.
 */
export function useTestStore(fileUrl: string): TestStore {
  const dbName = testDatabaseName(fileUrl);
  let store: Store | undefined;
  beforeAll(async () => {
    store = await openStore({ uri: inject("mongodbUri"), dbName });
  });
  afterAll(async () => {
    if (!store) return;
    await store.db.dropDatabase();
    await store.close();
  });
  return {
    get store() {
      if (!store) throw new Error("useTestStore: the store is only available inside tests and hooks");
      return store;
    },
    get uri() {
      return inject("mongodbUri");
    },
    dbName,
  };
}
