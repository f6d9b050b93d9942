import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Where Portcullis keeps tools it builds for itself (the FerretDB binary): `PORTCULLIS_TOOLS_DIR`, else
 * `${XDG_CACHE_HOME:-$HOME/.cache}/portcullis`. It lives outside the data directory so that one build
 * serves every data directory, test run and checkout on the machine.
 */
export function defaultToolsDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env["PORTCULLIS_TOOLS_DIR"];
  if (explicit) return explicit;
  const cache = env["XDG_CACHE_HOME"] || join(env["HOME"] || homedir(), ".cache");
  return join(cache, "portcullis");
}
