// Preloaded into a benchmarked gateway process (node --expose-gc --import): on SIGUSR2 it collects
// garbage and appends the process's live memory to BENCH_MEMORY_FILE, so a benchmark can read what
// the gateway really holds rather than RSS, which counts garbage not yet collected.
import { appendFileSync } from "node:fs";

const file = process.env["BENCH_MEMORY_FILE"];
const gc = (globalThis as { gc?: () => void }).gc;
if (file && gc) {
  process.on("SIGUSR2", () => {
    gc();
    const m = process.memoryUsage();
    appendFileSync(file, `${JSON.stringify({ heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss })}\n`);
  });
}
