/** What the machine offers, as found by the launcher; absent means "not found". */
export interface AvailableTools {
  /** A `mongod` on PATH. */
  readonly mongodPath?: string;
  /** A FerretDB binary already built into the tools directory. */
  readonly builtFerretDbPath?: string;
  /** A `ferretdb` on PATH. */
  readonly ferretDbOnPath?: string;
  /** A `go` on PATH, with which FerretDB can be built. */
  readonly goPath?: string;
  /** Where a FerretDB built with Go will be placed. */
  readonly ferretDbBuildTarget: string;
}

/** One way to get a server, in the order the launcher will try them. */
export type ServerCandidate =
  | { readonly kind: "mongod"; readonly mongodPath: string }
  | {
      readonly kind: "ferretdb";
      readonly binaryPath: string;
      /** Set when the binary does not exist yet and must first be built with this `go`. */
      readonly buildWithGo?: string;
    }
  | { readonly kind: "mongodb-memory-server" };

/**
 * Orders the ways to start a local server, best first:
 * 1. a real `mongod` on PATH: full MongoDB semantics;
 * 2. FerretDB on SQLite: already built into the tools dir, else on PATH, else built with Go. The tools-dir
 *    build is preferred over one on PATH because its version, and so its command-line flags, are known;
 * 3. mongodb-memory-server, which downloads a `mongod` (needs network access and a supported platform).
 * Later candidates are fallbacks when an earlier one fails to start. Pure, so the order is testable.
 */
export function chooseDatabaseServer(tools: AvailableTools): ServerCandidate[] {
  const candidates: ServerCandidate[] = [];
  if (tools.mongodPath) candidates.push({ kind: "mongod", mongodPath: tools.mongodPath });
  const ferretDb = tools.builtFerretDbPath ?? tools.ferretDbOnPath;
  if (ferretDb) candidates.push({ kind: "ferretdb", binaryPath: ferretDb });
  else if (tools.goPath) candidates.push({ kind: "ferretdb", binaryPath: tools.ferretDbBuildTarget, buildWithGo: tools.goPath });
  candidates.push({ kind: "mongodb-memory-server" });
  return candidates;
}

/** How a candidate is described in logs and in the "nothing worked" error. */
export function describeCandidate(candidate: ServerCandidate): string {
  switch (candidate.kind) {
    case "mongod":
      return `mongod (${candidate.mongodPath})`;
    case "ferretdb":
      return candidate.buildWithGo ? `ferretdb (built with ${candidate.buildWithGo})` : `ferretdb (${candidate.binaryPath})`;
    case "mongodb-memory-server":
      return "mongodb-memory-server (downloads mongod)";
  }
}
