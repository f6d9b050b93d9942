/**
 * Usernames by user id, for naming a principal (WhoAmI, `actor.display_name` of audit events) without a
 * database read per request. A username never changes once the account exists, so a name once read is
 * kept; only memory bounds the map (the oldest entries go first).
 */
export interface UserNames {
  /** The user's username; undefined for an unknown user. Reads the database only on a user's first sight. */
  nameOf(userId: string): Promise<string | undefined>;
  /** Remembers a name already at hand (a login has the user record), sparing the first read. */
  note(userId: string, username: string): void;
}

const DEFAULT_MAX_ENTRIES = 100_000;

export function createUserNames(deps: { load: (userId: string) => Promise<string | undefined>; maxEntries?: number }): UserNames {
  const maxEntries = deps.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const names = new Map<string, string>();

  const note = (userId: string, username: string) => {
    if (names.has(userId)) return;
    names.set(userId, username);
    if (names.size > maxEntries) names.delete(names.keys().next().value!);
  };

  return {
    async nameOf(userId) {
      const known = names.get(userId);
      if (known !== undefined) return known;
      const loaded = await deps.load(userId);
      if (loaded !== undefined) note(userId, loaded);
      return loaded;
    },
    note,
  };
}
