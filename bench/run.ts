// `npm run bench`: runs every benchmark against the real gateway on this machine and prints figures.
// Traffic goes to 127.0.0.1 only; every benchmark is bounded in time and stops by itself.
import { benchAuditChain } from "./audit-chain.ts";
import { benchLoginLatency } from "./login-latency.ts";

const BENCHMARKS: Array<[string, () => Promise<Record<string, string>>]> = [
  ["login latency", benchLoginLatency],
  ["audit log", benchAuditChain],
];

for (const [name, run] of BENCHMARKS) {
  process.stdout.write(`\n## ${name}\n`);
  const figures = await run();
  for (const [label, value] of Object.entries(figures)) process.stdout.write(`${label.padEnd(52)} ${value}\n`);
}
