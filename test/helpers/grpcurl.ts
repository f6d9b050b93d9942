import { execFile } from "node:child_process";
import { access, constants, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { findOnPath } from "../../src/store/embedded-db/find-executable.ts";
import { defaultToolsDir } from "../../src/store/embedded-db/tools-dir.ts";

const run = promisify(execFile);

/**
 * Finds grpcurl on PATH or in the tools dir, installing it there with `go install` when Go is present.
 * Resolves undefined only when neither grpcurl nor Go is available.
 */
export async function ensureGrpcurl(): Promise<string | undefined> {
  const onPath = await findOnPath("grpcurl");
  if (onPath) return onPath;
  const bin = join(defaultToolsDir(), "bin");
  const installed = join(bin, "grpcurl");
  try {
    await access(installed, constants.X_OK);
    return installed;
  } catch {
    // not installed yet
  }
  const go = await findOnPath("go");
  if (!go) return undefined;
  await mkdir(bin, { recursive: true });
  await run(go, ["install", "github.com/fullstorydev/grpcurl/cmd/grpcurl@latest"], {
    env: { ...process.env, GOBIN: bin },
    timeout: 600_000,
  });
  return installed;
}
