import type { ApiKeyRecord, ApiKeyRevocation, ApiKeyRotation, ApiKeyState } from "./api-key-record.ts";

/** The reads the cache needs; implemented by `src/store/api-keys-store.ts`. */
export interface ApiKeyCacheStore {
  findState(keyId: string): Promise<ApiKeyState | undefined>;
  changesSince(since: Date): Promise<{ records: ApiKeyRecord[]; revocations: ApiKeyRevocation[]; rotations: ApiKeyRotation[] }>;
}

/**
 * Key states held in process so that verifying a key needs no database round trip on the hot path.
 * A key is loaded on first use; revocations, rotations and settings changes made on any instance arrive
 * by polling within one poll interval (plus the query time), and the instance that makes a change
 * applies it at once with `note*`.
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
  start(): void;
  stop(): void;
}

export interface ApiKeyCacheOptions {
  readonly store: ApiKeyCacheStore;
  /** Default 250 ms: well inside the one-second propagation promise. */
  readonly pollIntervalMs?: number;
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
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const overlapMs = options.overlapMs ?? 2_000;
  const idleMs = options.idleMs ?? 10 * 60_000;
  const maxKeys = options.maxKeys ?? 100_000;
  const unknownTtlMs = options.unknownTtlMs ?? 5_000;
  const onError = options.onError ?? ((err: unknown) => console.error("api key cache:", err));

  const entries = new Map<string, Entry>();
  const unknown = new Map<string, number>();
  const loading = new Map<string, Promise<ApiKeyState | undefined>>();
  const listeners = new Set<(keyId: string) => void>();
  let timer: NodeJS.Timeout | undefined;
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

  const schedule = () => {
    timer = setTimeout(() => {
      poll()
        .catch(onError)
        .finally(() => {
          if (timer) schedule();
        });
    }, pollIntervalMs);
    timer.unref();
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
        pending = options.store.findState(keyId).finally(() => loading.delete(keyId));
        loading.set(keyId, pending);
      }
      const state = await pending;
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
    start() {
      if (timer) return;
      polledFrom = now();
      schedule();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
