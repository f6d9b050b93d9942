/**
 * The database layout as data: every collection Portcullis uses and the indexes it needs. `openStore`
 * creates what is missing at start; what exists is left alone, so starting twice changes nothing.
 *
 * Indexes are named explicitly: creating an index that exists under the same name and key is a no-op,
 * while a changed key under an old name fails loudly instead of silently piling up variants. Changing
 * one therefore means a new name and a schema version bump with a migration that drops the old one.
 *
 * Only features FerretDB 1.x also has are used: no TTL, partial or text indexes.
 */

/**
 * The layout version this code writes. Bump it with every change that older code could not work with;
 * a database marked with a newer version is refused (an older gateway must not write to it).
 */
export const SCHEMA_VERSION = 1;

/** The collection holding the schema marker document `{ _id: "schema", version }`. */
export const META_COLLECTION = "meta";
export const SCHEMA_MARKER_ID = "schema";

export interface IndexSpec {
  readonly name: string;
  readonly key: Readonly<Record<string, 1 | -1>>;
  readonly unique?: boolean;
}

export interface CollectionSpec {
  readonly name: string;
  readonly indexes: readonly IndexSpec[];
}

export const COLLECTIONS: readonly CollectionSpec[] = [
  { name: META_COLLECTION, indexes: [] },
  {
    // Append-only security log; its _id is derived from recorderId + recorderSeq (see domain/audit).
    name: "audit_events",
    indexes: [
      { name: "time_desc", key: { time: -1 } },
      { name: "request_id", key: { requestId: 1 } },
      { name: "type_time", key: { type: 1, time: -1 } },
      { name: "actor_time", key: { "actor.id": 1, time: -1 } },
    ],
  },
];
