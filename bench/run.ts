// `npm run bench`: runs every benchmark against the real gateway on this machine and prints figures.
// Traffic goes to 127.0.0.1 only; every benchmark is bounded in time and stops by itself.
import { benchAudioStream } from "./audio-stream.ts";
import { benchAiStream } from "./ai-stream.ts";
import { benchAuditChain } from "./audit-chain.ts";
import { benchAuthThroughput } from "./auth-throughput.ts";
import { benchHotPath } from "./hot-path.ts";
import { benchJobs } from "./jobs.ts";
import { benchLoginLatency } from "./login-latency.ts";

const BENCHMARKS: Array<[string, () => Promise<Record<string, string>>]> = [
  ["authentication throughput", benchAuthThroughput],
  ["hot path", benchHotPath],
  ["login latency", benchLoginLatency],
  ["audit log", benchAuditChain],
  ["audio", benchAudioStream],
  ["ai streaming", benchAiStream],
  ["jobs", benchJobs],
];

// `npm run bench -- <name fragment>` runs only the matching benchmarks.
const only = process.argv.slice(2).join(" ").toLowerCase();

for (const [name, run] of BENCHMARKS.filter(([name]) => name.includes(only))) {
  process.stdout.write(`\n## ${name}\n`);
  const figures = await run();
  for (const [label, value] of Object.entries(figures)) process.stdout.write(`${label.padEnd(72)} ${value}\n`);
}
