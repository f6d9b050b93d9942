import { afterAll, describe, expect, inject, it } from "vitest";
import { openStore, type Store } from "../../src/store/mongo-store.ts";
import { COLLECTIONS, META_COLLECTION, SCHEMA_MARKER_ID, SCHEMA_VERSION } from "../../src/store/schema.ts";
import { testDatabaseName } from "../helpers/database.ts";

describe("openStore", () => {
  const uri = inject("mongodbUri");
  const opened: Store[] = [];
  afterAll(async () => {
    const [first] = opened;
    await first?.db.dropDatabase();
    for (const store of opened) await store.close();
  });

  async function open(dbName: string): Promise<Store> {
    const store = await openStore({ uri, dbName });
    opened.push(store);
    return store;
  }

  it("creates every collection, index and the schema marker, and opening again changes nothing", async () => {
    const dbName = testDatabaseName(import.meta.url);
    const store = await open(dbName);
    await store.ping();

    const indexesBefore = await Promise.all(COLLECTIONS.map((c) => store.db.collection(c.name).indexes()));
    const second = await open(dbName);
    const indexesAfter = await Promise.all(COLLECTIONS.map((c) => second.db.collection(c.name).indexes()));
    expect(indexesAfter).toEqual(indexesBefore);

    const collections = (await store.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    for (const spec of COLLECTIONS) {
      expect(collections).toContain(spec.name);
      const names = (await store.db.collection(spec.name).indexes()).map((index) => index.name);
      for (const index of spec.indexes) expect(names).toContain(index.name);
    }

    const markers = await store.db
      .collection(META_COLLECTION)
      .find({ _id: SCHEMA_MARKER_ID as never })
      .toArray();
    expect(markers).toHaveLength(1);
    expect(markers[0]).toMatchObject({ version: SCHEMA_VERSION });
  });

  it("refuses a database whose schema version is newer than the code's", async () => {
    const store = await open(testDatabaseName(import.meta.url));
    await store.db.collection(META_COLLECTION).updateOne({ _id: SCHEMA_MARKER_ID as never }, { $set: { version: SCHEMA_VERSION + 1 } });

    await expect(openStore({ uri, dbName: store.db.databaseName })).rejects.toThrow(`schema version ${SCHEMA_VERSION + 1}, newer than this Portcullis understands (${SCHEMA_VERSION})`);
    const marker = await store.db.collection(META_COLLECTION).findOne({ _id: SCHEMA_MARKER_ID as never });
    expect(marker).toMatchObject({ version: SCHEMA_VERSION + 1 });
    await store.db.dropDatabase();
  });

  it("names the server but never the password when it cannot connect", async () => {
    const error: unknown = await openStore({ uri: "mongodb://admin:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=300", dbName: "x" }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("mongodb://***@127.0.0.1:1/");
    expect((error as Error).message).not.toContain("hunter2");
  });
});
