/**
 * The embedded database launcher: a local MongoDB-compatible server under a data directory, for running
 * the gateway without an external MongoDB and for the tests.
 */
export type { EmbeddedDatabase, EmbeddedDatabaseKind } from "./embedded-database.ts";
export { startEmbeddedDatabase } from "./start-embedded-database.ts";
export { chooseDatabaseServer, type AvailableTools, type ServerCandidate } from "./choose-server.ts";
export { defaultToolsDir } from "./tools-dir.ts";
