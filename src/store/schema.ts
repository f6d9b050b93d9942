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
export const SCHEMA_VERSION = 2;

/** The collection holding the schema marker document `{ _id: "schema", version }`. */
export const META_COLLECTION = "meta";
export const SCHEMA_MARKER_ID = "schema";
/** Identifier claims: `_id` "username:<lookalike key>" or "email:<address>", inserted before a user takes it. */
export const USER_CLAIMS_COLLECTION = "user_claims";

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
    // The tamper-evident security log: _id is the chain sequence number (1, 2, 3…), so two writers can
    // never both own a position; eventId is recorderId:recorderSeq. See docs/audit-chain.md.
    name: "audit_events",
    indexes: [
      { name: "time_desc", key: { time: -1 } },
      { name: "request_id", key: { requestId: 1 } },
      { name: "type_time", key: { type: 1, time: -1 } },
      { name: "actor_time", key: { "actor.id": 1, time: -1 } },
      { name: "target_id", key: { "target.id": 1 } },
      { name: "event_id", key: { eventId: 1 } },
      { name: "hash", key: { hash: 1 } },
    ],
  },
  // Signed chain heads and retention checkpoints; _id is the seq they sign, insert-only.
  { name: "audit_heads", indexes: [] },
  { name: "audit_checkpoints", indexes: [] },
  // Temporary account locks of the automatic response; _id is userId:lockedAt, insert-only.
  { name: "account_locks", indexes: [{ name: "until", key: { until: 1 } }] },
  {
    // People who sign in; _id is a UUID. usernameKey (NFKC + case-folded) makes "Alice" and "alice" one
    // name. updatedAt moves with every change so the revocation poller can find role/disable changes.
    name: "users",
    indexes: [
      { name: "username_key", key: { usernameKey: 1 }, unique: true },
      { name: "role", key: { role: 1 } },
      { name: "updated_at", key: { updatedAt: 1 } },
    ],
  },
  // What makes usernames (by look, UTS #39 skeleton) and e-mail addresses unique: one insert-only
  // document per identifier, `_id` "username:<key>" / "email:<address>", holding the user id. The unique
  // _id decides between concurrent creates and updates (FerretDB has no atomic conditional update).
  { name: USER_CLAIMS_COLLECTION, indexes: [] },
  {
    // One document per failed sign-in and key ("user:<usernameKey>" or "ip:<address>"), shared by all
    // instances; inserted, never updated (FerretDB loses concurrent updates of one document). Old ones
    // are swept by `at` (FerretDB has no TTL indexes).
    name: "login_throttle",
    indexes: [
      { name: "key_at", key: { key: 1, at: -1 } },
      { name: "at", key: { at: 1 } },
    ],
  },
  {
    // One TOTP factor per user, _id = user id; every lookup is by _id, so no further index.
    name: "mfa_factors",
    indexes: [],
  },
  {
    // Spent TOTP steps and backup codes, one insert-only document each; the unique _id
    // ("<enrollmentId>:totp:<step>" / "<enrollmentId>:backup_code:<hash>") is what makes a use single:
    // FerretDB 1.x's conditional updates are not atomic, a duplicate insert always fails.
    name: "mfa_code_uses",
    indexes: [
      { name: "enrollment_kind_step", key: { enrollmentId: 1, kind: 1, step: -1 } },
      { name: "user_id", key: { userId: 1 } },
    ],
  },
  // Sessions, revocations and refresh-token claims are split so that no two writers ever update one
  // document: FerretDB 1.x applies an update as read-modify-write of the whole document, so concurrent
  // updates lose each other's fields and a conditional update is no compare-and-set. An insert with a
  // unique _id is atomic, so revocations and claims are insert-only documents keyed by what they mark.
  {
    // One document per sign-in; _id is a UUID. Only the rotation that holds the session's live refresh
    // token updates it. Expired sessions are swept by the application (no TTL index on FerretDB).
    name: "sessions",
    indexes: [{ name: "user_id", key: { userId: 1 } }],
  },
  {
    // _id is the session id: the first revocation wins, none is ever lost. Polled by every instance.
    name: "session_revocations",
    indexes: [{ name: "revoked_at", key: { revokedAt: 1 } }],
  },
  {
    // Rotating refresh tokens; _id is the SHA-256 of the token, never the token. Used tokens are kept
    // until they expire so that a replay is recognised as theft.
    name: "refresh_tokens",
    indexes: [{ name: "session_id", key: { sessionId: 1 } }],
  },
  // _id is a refresh token's hash: inserting it is how exactly one rotation claims the token.
  { name: "refresh_token_claims", indexes: [] },
  // Public halves of every instance's JWT signing keys; _id is the kid. A handful of documents, read whole.
  { name: "signing_keys", indexes: [] },
  // API keys. Settings live in `api_keys` (_id = key id; only UpdateApiKey changes them, and updatedAt
  // moves with every change for the pollers); revocation and rotation are insert-only documents keyed by
  // the key id, so that the first one wins and no concurrent write can undo it.
  {
    name: "api_keys",
    indexes: [
      { name: "owner_created", key: { ownerUserId: 1, createdAt: -1 } },
      { name: "created", key: { createdAt: -1 } },
      { name: "updated_at", key: { updatedAt: 1 } },
    ],
  },
  {
    name: "api_key_revocations",
    indexes: [
      { name: "owner", key: { ownerUserId: 1 } },
      { name: "revoked_at", key: { revokedAt: 1 } },
    ],
  },
  {
    name: "api_key_rotations",
    indexes: [
      { name: "owner", key: { ownerUserId: 1 } },
      { name: "rotated_at", key: { rotatedAt: 1 } },
    ],
  },
  // Usage counts: one document per key and server instance (_id "<keyId>:<instanceId>"), written only
  // by that instance as running totals; a key's usage is the sum over its documents.
  { name: "api_key_usage", indexes: [{ name: "key_id", key: { keyId: 1 } }] },
  // AI usage: one document per subject (key, user, a key's budget period) and instance
  // (_id "<subject>|<instanceId>"), written only by that instance; budget checks read an _id range.
  { name: "ai_usage", indexes: [{ name: "subject", key: { subject: 1 } }] },
  // Provider credentials (envelope-encrypted; _id derived from provider and name), the rotation lock
  // (_id "rotation", insert-only) and the first-use claims (_id "<credential id>:<version time>").
  { name: "provider_credentials", indexes: [{ name: "provider_name", key: { provider: 1, name: 1 } }] },
  { name: "provider_credential_locks", indexes: [] },
  { name: "provider_credential_uses", indexes: [] },
  // One document per followed topic (_id "users", "sessions", "api_keys"…), its mark set to a fresh
  // value after every change of the topic: what each instance's change feed reads, a few documents whole.
  { name: "change_marks", indexes: [] },
  // AI jobs (see docs in src/domain/jobs/). `jobs`: _id "<owner user id>.<time><random>", so one user's
  // jobs are an _id range, newest last; the indexes serve only the rare everyone's listing and the
  // retention sweep. Events "<job>:<sequence>", claims "<job>:<attempt>", outcomes "<job>", places
  // "<user>:<n>" and idempotency keys "<user>|<key hash>|<generation>" are insert-only decisions; tickets
  // "<due time>|<job>|<attempt>" are the pollers' due work, a small collection read as an _id range.
  {
    name: "jobs",
    indexes: [
      { name: "created", key: { createdAt: -1 } },
      { name: "finished_at", key: { finishedAt: 1 } },
    ],
  },
  // Live events of unfinished jobs only; a finished job's events move into one archive document.
  { name: "job_events", indexes: [] },
  { name: "job_event_archive", indexes: [] },
  { name: "job_claims", indexes: [] },
  { name: "job_tickets", indexes: [] },
  { name: "job_outcomes", indexes: [] },
  { name: "job_slots", indexes: [] },
  { name: "job_idempotency", indexes: [{ name: "created_at", key: { createdAt: 1 } }] },
];
