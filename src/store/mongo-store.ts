import { MongoClient, MongoServerError, type CommandStartedEvent, type Db } from "mongodb";
import { COLLECTIONS, META_COLLECTION, SCHEMA_MARKER_ID, SCHEMA_VERSION } from "./schema.ts";

/**
 * An open connection to Portcullis's database with its schema in place. Store modules
 * (`createAuditStore(store)`, …) reach their collections through `db`; nothing outside `src/store`
 * touches it.
 */
export interface Store {
  readonly db: Db;
  /** Rejects when the database does not answer; used by the health probe. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

interface SchemaMarker {
  _id: string;
  version: number;
  updatedAt: Date;
}

const NAMESPACE_EXISTS = 48;
const DUPLICATE_KEY = 11000;

/**
 * Connects to `uri`, then makes sure every collection and index of `schema.ts` exists and the schema
 * marker (`meta`, `_id: "schema"`) carries {@link SCHEMA_VERSION}. Idempotent, and safe when several
 * processes start at once.
 *
 * Rejects — and leaves nothing open — when the database cannot be reached (the message names the host
 * but never the credentials in the URI) or when the marker says a newer Portcullis has written to it.
 */
export async function openStore(options: {
  uri: string;
  dbName: string;
  /** Sees every command sent (the driver's command monitoring): for diagnostics, and for tests that prove a path never reaches the database. */
  onCommand?: (event: CommandStartedEvent) => void;
}): Promise<Store> {
  // ignoreUndefined: an optional field that is absent stays absent instead of being stored as null.
  const client = new MongoClient(options.uri, {
    appName: "portcullis",
    ignoreUndefined: true,
    ...(options.onCommand ? { monitorCommands: true } : {}),
    // Fail a bad URI in 10 s rather than the driver's 30, unless the URI says otherwise.
    ...(/[?&]serverSelectionTimeoutMS=/i.test(options.uri) ? {} : { serverSelectionTimeoutMS: 10_000 }),
  });
  if (options.onCommand) client.on("commandStarted", options.onCommand);
  try {
    await client.connect();
  } catch (err) {
    await client.close().catch(() => undefined);
    throw new Error(`cannot connect to MongoDB at ${withoutCredentials(options.uri)}: ${(err as Error).message}`, { cause: err });
  }
  const db = client.db(options.dbName);
  try {
    await ensureSchema(db);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  return {
    db,
    async ping() {
      await db.command({ ping: 1 });
    },
    close: () => client.close(),
  };
}

async function ensureSchema(db: Db): Promise<void> {
  // 1. Refuse before touching anything if a newer version owns this database.
  const meta = db.collection<SchemaMarker>(META_COLLECTION);
  const marker = await meta.findOne({ _id: SCHEMA_MARKER_ID });
  if (marker && marker.version > SCHEMA_VERSION) {
    throw new Error(
      `database "${db.databaseName}" has schema version ${marker.version}, newer than this Portcullis understands (${SCHEMA_VERSION}); upgrade Portcullis or point it at another database`,
    );
  }

  // 2. Collections and indexes. Both creations are no-ops for what exists (a concurrent creator included).
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  for (const spec of COLLECTIONS) {
    if (!existing.has(spec.name)) {
      await db.createCollection(spec.name).catch((err: unknown) => {
        if (!(err instanceof MongoServerError && err.code === NAMESPACE_EXISTS)) throw err;
      });
    }
    // One index per call, and only the missing ones: FerretDB 1.24 drops the connection (a server-side
    // panic) when one createIndexes call names several indexes that all exist already.
    const collection = db.collection(spec.name);
    const present = new Set((await collection.indexes()).map((index) => index.name));
    for (const index of spec.indexes) {
      if (present.has(index.name)) continue;
      await collection.createIndex({ ...index.key }, { name: index.name, ...(index.unique ? { unique: true } : {}) });
    }
  }

  // 3. Record the version only now that the layout matches it; never lower it.
  if (!marker) {
    await meta.insertOne({ _id: SCHEMA_MARKER_ID, version: SCHEMA_VERSION, updatedAt: new Date() }).catch((err: unknown) => {
      if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw err;
    });
  } else if (marker.version < SCHEMA_VERSION) {
    await meta.updateOne({ _id: SCHEMA_MARKER_ID, version: { $lt: SCHEMA_VERSION } }, { $set: { version: SCHEMA_VERSION, updatedAt: new Date() } });
  }
}

/** The URI with any `user:password@` removed, fit for logs and error messages. */
function withoutCredentials(uri: string): string {
  return uri.replace(/^([a-z+]+:\/\/)[^@/]*@/i, "$1***@").replace(/\?.*$/, "");
}
