import { randomUUID } from "node:crypto";
import { MongoServerError, type Db } from "mongodb";
import type { ChangeMarksStore, ChangeTopic } from "../domain/changes/change-feed.ts";
import type { Store } from "./mongo-store.ts";

export type { ChangeMarksStore } from "../domain/changes/change-feed.ts";

/** One small document per topic: `{ _id: topic, mark, at }`. */
export const CHANGE_MARKS_COLLECTION = "change_marks";

interface ChangeMarkDocument {
  _id: string;
  mark: string;
  at: Date;
}

const DUPLICATE_KEY = 11000;

/**
 * Marks `topic` as changed, after the write it follows has been made: every instance's change feed sees
 * a mark it has not seen and refreshes what follows the topic. The mark is a fresh random value, never
 * a counter: FerretDB 1.x applies an update as read-modify-write, so concurrent increments could lose
 * one another and land on a value a reader already saw, while a fresh value written after a reader
 * looked is always new to it. A failure rejects, so the caller's operation fails and is retried rather
 * than leaving other instances a minute behind (the feed's periodic refresh is the only other way back).
 */
export async function markChanged(db: Db, topic: ChangeTopic): Promise<void> {
  const marks = db.collection<ChangeMarkDocument>(CHANGE_MARKS_COLLECTION);
  const set = { $set: { mark: randomUUID(), at: new Date() } };
  try {
    await marks.updateOne({ _id: topic }, set, { upsert: true });
  } catch (error) {
    // Two first marks raced to insert the document: it exists now, so set it.
    if (!(error instanceof MongoServerError && error.code === DUPLICATE_KEY)) throw error;
    await marks.updateOne({ _id: topic }, set);
  }
}

/** The change feed's one read: every mark, a handful of documents fetched whole. */
export function createChangeMarksStore(store: Store): ChangeMarksStore {
  const marks = store.db.collection<ChangeMarkDocument>(CHANGE_MARKS_COLLECTION);
  return {
    async read() {
      const docs = await marks.find({}, { projection: { _id: 1, mark: 1 } }).toArray();
      return new Map(docs.map((doc) => [String(doc._id), String(doc.mark)]));
    },
  };
}
