// An engine process: a long-lived child of the gateway that owns one eSpeak NG instance (GPL-3.0) and
// speaks to the gateway only over its IPC pipe, so the engine is never linked into the gateway's own
// process. The main thread schedules jobs, one at a time, onto the synthesis thread and can stop the
// running one at once through a shared abort flag; it exits when the gateway goes away.
import { Worker } from "node:worker_threads";
import type { EngineJob, FromEngine, ToEngine } from "../engine-protocol.ts";

const abortFlag = new SharedArrayBuffer(4);
const flag = new Int32Array(abortFlag);
const synthesis = new Worker(new URL("./engine-worker.ts", import.meta.url), { workerData: { abortFlag } });
const queue: EngineJob[] = [];
let running: number | undefined;

const send = (message: FromEngine) => {
  if (process.connected) process.send!(message);
};

const next = () => {
  if (running !== undefined) return;
  const job = queue.shift();
  if (!job) return;
  running = job.job;
  synthesis.postMessage(job);
};

synthesis.on("message", (message: FromEngine) => {
  if (message.type === "done" && message.job === running) {
    running = undefined;
    next();
  }
  send(message);
});
// The synthesis thread is the engine: if it fails, this process is of no use. The gateway sees the exit,
// fails the streams that were using it with UNAVAILABLE, and starts a replacement.
synthesis.on("error", (error) => {
  process.stderr.write(`engine thread failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(70);
});
synthesis.on("exit", () => process.exit(70));

process.on("message", (message: ToEngine) => {
  if (message.type !== "cancel") {
    queue.push(message);
    next();
    return;
  }
  if (message.job === running) {
    Atomics.store(flag, 0, message.job);
    return;
  }
  const index = queue.findIndex((job) => job.job === message.job);
  if (index >= 0) {
    queue.splice(index, 1);
    send({ type: "done", job: message.job, outcome: "aborted" });
  }
});
process.on("disconnect", () => process.exit(0));
