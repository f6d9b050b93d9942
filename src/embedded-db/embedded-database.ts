/** Which MongoDB-compatible server backs an embedded database. */
export type EmbeddedDatabaseKind = "mongod" | "ferretdb" | "mongodb-memory-server";

/**
 * A local MongoDB-compatible server provisioned under a data directory.
 *
 * `owned` says whether this process started the server. An owned database stops the server on `stop()`;
 * a database that was found already running (started by another process on the same data directory,
 * e.g. the gateway while the admin CLI runs) is borrowed, and its `stop()` does nothing.
 */
export interface EmbeddedDatabase {
  /** A `mongodb://` connection string for the server, listening on loopback only. */
  readonly uri: string;
  readonly kind: EmbeddedDatabaseKind;
  readonly owned: boolean;
  /** Stops an owned server (SIGTERM, then SIGKILL after 5 s) and forgets it; a no-op when borrowed. */
  stop(): Promise<void>;
}

/** A server process this process started; the launcher turns it into an {@link EmbeddedDatabase}. */
export interface RunningServer {
  readonly kind: EmbeddedDatabaseKind;
  readonly uri: string;
  /** The pid of the server process itself, recorded so other processes can find and reuse it. */
  readonly pid: number;
  stop(): Promise<void>;
}
