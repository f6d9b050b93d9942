/** Values kept in memory and written behind; see {@link createWriteBehind}. */
export interface WriteBehind {
  /** Notes that the value of `id` changed: the next flush writes it. */
  markChanged(id: string): void;
  /** Whether `id` changed since its last write began. */
  isPending(id: string): boolean;
  /** Writes a snapshot of every value changed since the last write; rejects when the write fails. */
  flush(): Promise<void>;
}

/**
 * Counters kept in memory and written every few seconds, never once per request. Writes run one after
 * another, each taking every value changed so far: an older snapshot never overwrites a newer one, and
 * concurrent flushes share one write. The ids of a failed write are written again by the next flush.
 * `afterWrite` sees the ids of each successful write.
 */
export function createWriteBehind<V extends object>(deps: {
  current(id: string): V | undefined;
  save(snapshot: ReadonlyMap<string, V>): Promise<void>;
  afterWrite?(written: ReadonlySet<string>): void;
}): WriteBehind {
  let changed = new Set<string>();
  let writing: Promise<void> = Promise.resolve();
  return {
    markChanged: (id) => void changed.add(id),
    isPending: (id) => changed.has(id),
    flush() {
      writing = writing
        .catch(() => undefined)
        .then(async () => {
          if (changed.size === 0) return;
          const batch = changed;
          changed = new Set();
          const snapshot = new Map<string, V>();
          for (const id of batch) {
            const value = deps.current(id);
            if (value) snapshot.set(id, { ...value });
          }
          try {
            await deps.save(snapshot);
          } catch (error) {
            for (const id of batch) changed.add(id);
            throw error;
          }
          deps.afterWrite?.(batch);
        });
      return writing;
    },
  };
}
