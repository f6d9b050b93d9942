import { execFile } from "node:child_process";
import { access, constants, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { findOnPath } from "../embedded-db/find-executable.ts";
import { defaultToolsDir } from "../embedded-db/tools-dir.ts";

const run = promisify(execFile);

/**
 * A Go command-line tool for tests and benchmarks (grpcurl, ghz): from PATH, else from the tools dir,
 * else installed there with `go install <module>@latest` when Go is present (the Go module proxy is
 * reachable where the npm registry is). Resolves undefined only when neither the tool nor Go is there.
 */
export async function ensureGoTool(name: string, module: string): Promise<string | undefined> {
  const onPath = await findOnPath(name);
  if (onPath) return onPath;
  const bin = join(defaultToolsDir(), "bin");
  const installed = join(bin, name);
  try {
    await access(installed, constants.X_OK);
    return installed;
  } catch {
    // not installed yet
  }
  const go = await findOnPath("go");
  if (!go) return undefined;
  await mkdir(bin, { recursive: true });
  await run(go, ["install", `${module}@latest`], { env: { ...process.env, GOBIN: bin }, timeout: 600_000 });
  return installed;
}
