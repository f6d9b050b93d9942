import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

// Counts full (mark-compact) collections in a fresh Node process that streams buffers the way the
// gateway forwards audio: 64 KiB buffers, a few alive at a time, the rest dying young.
const churn = (tuned: boolean): number => {
  const script = `
    import { PerformanceObserver, constants } from "node:perf_hooks";
    import { countArrayBuffersInGlobalHeapLimit } from ${JSON.stringify(new URL("../../src/app/heap-tuning.ts", import.meta.url).href)};
    if (${tuned}) countArrayBuffersInGlobalHeapLimit();
    let major = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++; }).observe({ entryTypes: ["gc"] });
    const inFlight = [];
    for (let i = 0; i < 16000; i++) {
      const chunk = new Uint8Array(64 * 1024);
      chunk[i % chunk.length] = i;
      inFlight.push(chunk);
      if (inFlight.length > 8) inFlight.shift();
    }
    setTimeout(() => process.stdout.write(String(major)), 50);
  `;
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  return Number(run.stdout);
};

describe("heap tuning", () => {
  it("spares full collections while buffers stream through and die young", () => {
    const historic = churn(false);
    const tuned = churn(true);
    // 1 GB of short-lived buffers: the historic rule counts every byte toward the old generation.
    expect(historic).toBeGreaterThanOrEqual(8);
    expect(tuned).toBeLessThanOrEqual(historic / 4);
  });
});
