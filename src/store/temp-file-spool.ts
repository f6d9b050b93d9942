import { createReadStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExportSpool } from "../domain/jobs/job-export.ts";

/** An export spool in a private temporary file (mode 0600 in a 0700 directory), removed by `dispose`. */
export async function createTempFileSpool(): Promise<ExportSpool> {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-export-"));
  const path = join(dir, "spool");
  const file = await open(path, "w", 0o600);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await file.close();
  };
  return {
    async write(bytes) {
      await file.write(bytes);
    },
    async *read() {
      await close();
      for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) yield chunk as Buffer;
    },
    async dispose() {
      await close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
