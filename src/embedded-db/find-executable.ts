import { access } from "node:fs/promises";
import { constants } from "node:fs";
import { delimiter, join } from "node:path";

/** The first executable file called `name` in the directories of `PATH`, like `command -v`. */
export async function findOnPath(name: string, pathVariable: string | undefined = process.env["PATH"]): Promise<string | undefined> {
  for (const dir of (pathVariable ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Whether `path` exists and may be executed by this process. */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
