import type { ChangeFollower } from "../changes/change-feed.ts";
import type { ApiKeyRecord, ApiKeyRevocation, ApiKeyRotation, ApiKeyState } from "./api-key-record.ts";

/** The reads the cache needs; implemented by `src/store/api-keys-store.ts`. */
export interface ApiKeyCacheStore {
  findState(keyId: string): Promise<ApiKeyState | undefined>;
  changesSince(since: Date): Promise<{ records: ApiKeyRecord[]; revocations: ApiKeyRevocation[]; rotations: ApiKeyRotation[] }>;
}

/**
 * Key states held in process so that verifying a key needs no database round trip on the hot path.
 * A key is loaded on first use; revocations, rotations and settings changes made on any instance arrive
 * through the change feed within one feed period (plus the query time), and the instance that makes a
 * change applies it at once with `note*`.
 */
export interface ApiKeyCache {
  /** The key's state, from memory or (first use on this instance) the database; undefined if unknown. */
  get(keyId: string): Promise<ApiKeyState | undefined>;
  /** The cached state only; never touches the database. */
  peek(keyId: string): ApiKeyState | undefined;
  noteRecord(record: ApiKeyRecord): void;
  noteRevocation(revocation: ApiKeyRevocation): void;
  noteRotation(rotation: ApiKeyRotation): void;
  /** Called with the id of every cached key whose state may have changed. Returns the unsubscribe function. */
  subscribe(listener: (keyId: string) => void): () => void;
  /** The cache as a follower of the change feed: reads what changed since its last read (skipped while nothing is cached). */
  readonly follower: ChangeFollower;
}

export interface ApiKeyCacheOptions {
  readonly store: ApiKeyCacheStore;
  /** How far each poll reaches back before the previous one, for clock skew and slow commits. Default 2 s. */
  readonly overlapMs?: number;
  /** Keys unused this long are dropped (and reloaded on next use). Default 10 minutes. */
  readonly idleMs?: number;
  /** Most keys held. Default 100,000. */
  readonly maxKeys?: number;
  /** How long an unknown key id is remembered as unknown, so garbage cannot hammer the database. Default 5 s. */
  readonly unknownTtlMs?: number;
  readonly now?: () => number;
  readonly onError?: (err: unknown) => void;
}

interface Entry {
  state: ApiKeyState;
  usedAt: number;
}

export function createApiKeyCache(options: ApiKeyCacheOptions): ApiKeyCache {
  const now = options.now ?? Date.now;
  const overlapMs = options.overlapMs ?? 2_000;
  const idleMs = options.idleMs ?? 10 * 60_000;
  const maxKeys = options.maxKeys ?? 100_000;
  const unknownTtlMs = options.unknownTtlMs ?? 5_000;
  const onError = options.onError ?? ((err: unknown) => console.error("api key cache:", err));

  const entries = new Map<string, Entry>();
  const unknown = new Map<string, number>();
  // A load carries the generation it started in; a refresh begun since may have applied a change newer
  // than what the load read, so such a load is used by its callers but not kept.
  const loading = new Map<string, { state: Promise<ApiKeyState | undefined>; generation: number }>();
  let generation = 0;
  const listeners = new Set<(keyId: string) => void>();
  let polledFrom = now();
  let lastSweep = now();

  const notify = (keyId: string) => {
    for (const listener of listeners) {
      try {
        listener(keyId);
      } catch (err) {
        onError(err);
      }
    }
  };

  const update = (keyId: string, change: (state: ApiKeyState) => ApiKeyState) => {
    const entry = entries.get(keyId);
    if (!entry) return;
    entry.state = change(entry.state);
    notify(keyId);
  };

  const applyRecord = (record: ApiKeyRecord) => update(record._id, (state) => (record.version >= state.record.version ? { ...state, record } : state));
  const applyRevocation = (revocation: ApiKeyRevocation) => update(revocation._id, (state) => ({ ...state, revocation }));
  const applyRotation = (rotation: ApiKeyRotation) => update(rotation._id, (state) => ({ ...state, rotation }));

  const sweep = (at: number) => {
    lastSweep = at;
    for (const [id, entry] of entries) if (at - entry.usedAt > idleMs) entries.delete(id);
    for (const [id, until] of unknown) if (until <= at) unknown.delete(id);
  };

  const poll = async () => {
    const startedAt = now();
    generation++;
    // Nothing cached, nothing to keep fresh: a key loaded later is read fresh from the database, and the
    // poll after that reaches back past its load (overlap), so skipping costs no change.
    if (entries.size === 0) {
      polledFrom = startedAt;
      if (startedAt - lastSweep > 60_000) sweep(startedAt);
      return;
    }
    const changes = await options.store.changesSince(new Date(polledFrom - overlapMs));
    polledFrom = startedAt;
    for (const record of changes.records) {
      unknown.delete(record._id); // a key created elsewhere after someone guessed its id: forget the guess
      applyRecord(record);
    }
    for (const revocation of changes.revocations) applyRevocation(revocation);
    for (const rotation of changes.rotations) applyRotation(rotation);
    if (startedAt - lastSweep > 60_000) sweep(startedAt);
  };

  return {
    async get(keyId) {
      const at = now();
      const entry = entries.get(keyId);
      if (entry) {
        entry.usedAt = at;
        return entry.state;
      }
      const knownUnknown = unknown.get(keyId);
      if (knownUnknown !== undefined && knownUnknown > at) return undefined;
      let pending = loading.get(keyId);
      if (!pending) {
        pending = { state: options.store.findState(keyId).finally(() => loading.delete(keyId)), generation };
        loading.set(keyId, pending);
      }
      const state = await pending.state;
      if (pending.generation !== generation) return entries.get(keyId)?.state ?? state;
      if (state === undefined) {
        if (unknown.size >= maxKeys) sweep(at);
        if (unknown.size < maxKeys) unknown.set(keyId, at + unknownTtlMs);
        return undefined;
      }
      const current = entries.get(keyId);
      if (current) return current.state; // a concurrent load or a note got there first
      if (entries.size >= maxKeys) {
        sweep(at);
        const oldest = entries.keys().next();
        if (entries.size >= maxKeys && !oldest.done) entries.delete(oldest.value);
      }
      entries.set(keyId, { state, usedAt: at });
      return state;
    },
    peek: (keyId) => entries.get(keyId)?.state,
    noteRecord(record) {
      unknown.delete(record._id);
      if (entries.has(record._id)) applyRecord(record);
      else entries.set(record._id, { state: { record }, usedAt: now() });
    },
    noteRevocation: applyRevocation,
    noteRotation: applyRotation,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    // Every minute even without a change: idle keys are swept then.
    follower: { name: "api key cache", topics: ["api_keys"], refresh: poll, everyMs: 60_000 },
  };
}
