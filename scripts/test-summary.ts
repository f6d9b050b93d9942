// Prints vitest's JSON report as the plain closing line CI reads: `N passed, N failed`.
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? "test-results/vitest.json";
let report: { numPassedTests: number; numFailedTests: number; numPendingTests?: number; numTodoTests?: number };
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch {
  console.log(`no test report at ${file}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(report.numFailedTests > 0 || report.numPassedTests === 0 ? 1 : 0);
