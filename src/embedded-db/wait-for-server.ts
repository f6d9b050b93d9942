import { MongoClient } from "mongodb";
import { setTimeout as sleep } from "node:timers/promises";

/** Whether a MongoDB-compatible server at `uri` answers `ping` within `timeoutMs`. Never throws. */
export async function pingServer(uri: string, timeoutMs: number): Promise<boolean> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs, directConnection: true });
  try {
    await client.db("admin").command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * Waits until the server at `uri` answers `ping`. Rejects after `timeoutMs`, or as soon as `exited`
 * settles — a server that died at start will never answer, so there is no point waiting out the timeout.
 */
export async function waitForServer(uri: string, options: { timeoutMs: number; exited: Promise<unknown> }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exited = false;
  const watch = options.exited.then(() => {
    exited = true;
  });
  while (!exited) {
    if (await Promise.race([pingServer(uri, 1000), watch.then(() => false)])) return;
    if (Date.now() > deadline) throw new Error(`server did not answer ping within ${Math.round(options.timeoutMs / 1000)} s`);
    await Promise.race([sleep(200), watch]);
  }
  throw new Error("server exited during start");
}
