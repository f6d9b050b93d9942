import { afterEach, describe, expect, it } from "vitest";
import { createChangeFeed, type ChangeFeed, type ChangeTopic } from "../../src/domain/changes/change-feed.ts";
import { createChangeMarksStore, markChanged } from "../../src/store/change-marks-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

describe("change feed", () => {
  const feeds: ChangeFeed[] = [];
  afterEach(() => {
    for (const feed of feeds.splice(0)) feed.stop();
  });

  /** A feed (not started: each test polls by hand) and a follower of `topics` counting its refreshes. */
  function followed(topics: ChangeTopic[], options: { everyMs?: number; fail?: () => boolean } = {}) {
    const feed = createChangeFeed({ marks: createChangeMarksStore(database.store), onError: () => undefined });
    feeds.push(feed);
    const follower = { refreshes: 0 };
    feed.follow({
      name: "test",
      topics,
      ...(options.everyMs !== undefined ? { everyMs: options.everyMs } : {}),
      refresh: async () => {
        if (options.fail?.()) throw new Error("database down");
        follower.refreshes++;
      },
    });
    return { feed, follower };
  }

  it("refreshes a follower once at first, then only when one of its topics is marked", async () => {
    const { feed, follower } = followed(["users", "sessions"]);
    await feed.pollNow();
    expect(follower.refreshes).toBe(1);
    await feed.pollNow();
    await feed.pollNow();
    expect(follower.refreshes).toBe(1);

    await markChanged(database.store.db, "api_keys"); // not followed
    await feed.pollNow();
    expect(follower.refreshes).toBe(1);

    await markChanged(database.store.db, "sessions");
    await feed.pollNow();
    expect(follower.refreshes).toBe(2);
    expect(feed.lastCheckedAt()).toBeTypeOf("number");
  });

  it("retries a refresh that failed on the next poll, the mark still unseen", async () => {
    let failing = false;
    const { feed, follower } = followed(["mfa"], { fail: () => failing });
    await feed.pollNow();
    failing = true;
    await markChanged(database.store.db, "mfa");
    await feed.pollNow();
    expect(follower.refreshes).toBe(1);
    failing = false;
    await feed.pollNow();
    expect(follower.refreshes).toBe(2);
    await feed.pollNow();
    expect(follower.refreshes).toBe(2);
  });

  it("refreshes a follower with a period even when no mark moves (a lost mark is caught then)", async () => {
    const { feed, follower } = followed(["signing_keys"], { everyMs: 0 });
    await feed.pollNow();
    await feed.pollNow();
    expect(follower.refreshes).toBe(2);
  });

  it("sees every mark made by concurrent writers", async () => {
    const { feed, follower } = followed(["provider_credentials"]);
    await feed.pollNow();
    await Promise.all(Array.from({ length: 10 }, () => markChanged(database.store.db, "provider_credentials")));
    await feed.pollNow();
    expect(follower.refreshes).toBe(2);
  });
});
