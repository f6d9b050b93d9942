import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One real database for the whole run (embedded unless MONGODB_URI is set); each test file gets its own db on it.
    globalSetup: ["test/setup/global-database.ts"],
    testTimeout: 30_000,
    // Generous because the first run on a machine may build FerretDB (~100 s).
    hookTimeout: 180_000,
    pool: "forks",
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
    // The two tiers, told apart by folder (docs/architecture.md): `npm test -- --project unit` runs one.
    projects: [
      // A module in process: domain, store (on the shared test database), config, CLI parsing.
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      // The product from outside: a listening server called by real clients, or a spawned process.
      { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"] } },
    ],
  },
});
