// Prints vitest's JSON report as the plain closing line CI reads: `N passed, N failed`, after one line per
// test tier (the folders of test/: unit, e2e) so a failure says at once which tier it is in.
import { readFileSync } from "node:fs";
import { relative, sep } from "node:path";

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests?: number;
  numTodoTests?: number;
  testResults?: Array<{ name: string; assertionResults?: Array<{ status: string }> }>;
}

const file = process.argv[2] ?? "test-results/vitest.json";
let report: Report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch {
  console.log(`no test report at ${file}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const tiers = new Map<string, { files: number; passed: number; failed: number }>();
for (const result of report.testResults ?? []) {
  const parts = relative(process.cwd(), result.name).split(sep);
  const tier = parts[0] === "test" && parts.length > 2 ? `test/${parts[1]}` : "test";
  const counts = tiers.get(tier) ?? { files: 0, passed: 0, failed: 0 };
  counts.files += 1;
  for (const assertion of result.assertionResults ?? []) {
    if (assertion.status === "passed") counts.passed += 1;
    else if (assertion.status === "failed") counts.failed += 1;
  }
  tiers.set(tier, counts);
}
for (const [tier, counts] of [...tiers].sort()) console.log(`${tier}: ${counts.files} files, ${counts.passed} tests passing, ${counts.failed} failing`);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(report.numFailedTests > 0 || report.numPassedTests === 0 ? 1 : 0);
