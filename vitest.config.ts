import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One real database for the whole run (embedded unless MONGODB_URI is set); each test file gets its own db on it.
    globalSetup: ["test/setup/global-database.ts"],
    testTimeout: 30_000,
    // Generous because the first run on a machine may build FerretDB (~100 s).
    hookTimeout: 180_000,
    pool: "forks",
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
  },
});
