import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger, createRpcLog, type RpcLine } from "../../src/log/logger.ts";
import { createBatchedDestination, type FlushableDestination } from "../../src/log/batched-destination.ts";

// The gateway's stdout log gathers lines and writes them in batches: the lines, their order across
// pino's lines and the direct access line, and what reaches stdout before the process exits
// (logger.fatal then process.exit) must be exactly what unbatched writing gives.

const rpcLine = (i: number): RpcLine => ({ requestId: `req-${i}`, method: "portcullis.v1.AuthService/WhoAmI", code: "ok", durationMs: 0.5, principal: `user:u${i}`, ip: "127.0.0.1" });

/** A destination that records every write it receives. */
function recorder(): FlushableDestination & { writes: string[] } {
  const writes: string[] = [];
  return { writes, write: (text: string) => void writes.push(text), flush: (callback?: () => void) => callback?.(), flushSync: () => undefined };
}

/** Every line of `text` parsed, without its time (which differs between two runs). */
const linesOf = (text: string) =>
  text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const { time, ...rest } = JSON.parse(line) as { time: string };
      expect(typeof time).toBe("string");
      return rest;
    });

/** The same mix of lines through two loggers: pino's (plain, child, error) and the direct access line. */
function writeMix(logger: ReturnType<typeof createLogger>, from: number, to: number) {
  const rpc = createRpcLog(logger);
  const child = logger.child({ component: "test" });
  for (let i = from; i < to; i++) {
    if (i % 3 === 0) logger.info({ i }, "plain");
    else if (i % 3 === 1) rpc(rpcLine(i));
    else child.warn({ i, token: "never-shown" }, "child");
  }
}

describe("the batched log destination", () => {
  it("passes lines on in batches of about batchChars, in order, identical to unbatched lines", () => {
    const batched = recorder();
    const plain = recorder();
    const batchedLogger = createLogger({ level: "info", destination: createBatchedDestination(batched, { batchChars: 2_000, intervalMs: 3_600_000 }) });
    const plainLogger = createLogger({ level: "info", destination: plain });

    writeMix(batchedLogger, 0, 5);
    expect(batched.writes).toEqual([]); // under 2,000 characters: gathered
    writeMix(batchedLogger, 5, 60);
    writeMix(plainLogger, 0, 60);
    expect(batched.writes.length).toBeGreaterThan(3);
    for (const text of batched.writes) expect(text.length).toBeGreaterThanOrEqual(2_000);
    batchedLogger.flush();

    const expected = linesOf(plain.writes.join(""));
    expect(expected).toHaveLength(60);
    expect(linesOf(batched.writes.join(""))).toEqual(expected);
    expect(batched.writes.join("")).not.toContain("never-shown");
  });

  it("passes on what it gathered within intervalMs, however little", async () => {
    const inner = recorder();
    const logger = createLogger({ level: "info", destination: createBatchedDestination(inner, { batchChars: 1_000_000, intervalMs: 20 }) });
    logger.info("alone");
    await expect.poll(() => inner.writes.length, { timeout: 10_000 }).toBe(1);
    expect(linesOf(inner.writes[0]!)).toMatchObject([{ msg: "alone" }]);
  });

  it("flush and flushSync pass on what the turn gathered", () => {
    const inner = recorder();
    const destination = createBatchedDestination(inner, { batchChars: 1_000_000, intervalMs: 3_600_000 });
    const logger = createLogger({ level: "info", destination });
    logger.info("one");
    destination.flushSync();
    expect(inner.writes).toHaveLength(1);
    logger.info("two");
    logger.flush();
    expect(linesOf(inner.writes.join("")).map((line) => (line as { msg: string }).msg)).toEqual(["one", "two"]);
  });

  it.each([
    ["logger.fatal", 'logger.fatal("the end")', 1, "fatal"],
    ["a plain line (no flush asked for)", 'logger.info("the end")', 0, "info"],
  ])("stdout gets every line, in order, when the process exits right after %s", (_name, last, status, level) => {
    const dir = mkdtempSync(join(tmpdir(), "log-batching-"));
    const script = join(dir, "exit-after-fatal.ts");
    const logger = new URL("../../src/log/logger.ts", import.meta.url).href;
    writeFileSync(
      script,
      `import { createLogger, createRpcLog } from ${JSON.stringify(logger)};
const logger = createLogger({ level: "info" });
const rpc = createRpcLog(logger);
const line = (i) => ({ requestId: "req-" + i, method: "m/M", code: "ok", durationMs: 1, principal: undefined, ip: undefined });
// The first 1,500 lines are passed on and written out (each batch waited for: sonic-boom's exit flush can
// put a write still in flight after the lines it writes itself, batched or not, so the lines of the turn
// that exits stay under one batch). The last 30 and the final line are still gathered at the exit.
for (let turn = 0; turn < 3; turn++) {
  for (let i = 0; i < 500; i++) (i % 2 ? rpc(line(turn * 500 + i)) : logger.info({ n: turn * 500 + i }, "line"));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => logger.flush(resolve));
}
for (let i = 1500; i < 1530; i++) (i % 2 ? rpc(line(i)) : logger.info({ n: i }, "line"));
${last};
process.exit(${status});
`,
    );
    const result = spawnSync(process.execPath, [script], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    expect(result.status).toBe(status);
    const lines = linesOf(result.stdout) as Array<{ msg: string; n?: number; requestId?: string }>;
    expect(lines).toHaveLength(1531);
    lines.slice(0, 1530).forEach((line, i) => {
      if (i % 2) expect(line.requestId).toBe(`req-${i}`);
      else expect(line.n).toBe(i);
    });
    expect(lines[1530]).toMatchObject({ level, msg: "the end" });
  });
});
