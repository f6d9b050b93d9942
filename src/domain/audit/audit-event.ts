/** How a security-relevant action ended: done, refused for bad input/credentials, refused by policy, or broken. */
export type AuditOutcome = "success" | "failure" | "denied" | "error";

/**
 * Who acted. `id` is a stable identifier (user id, API key id), `display` a human label at the time of
 * the event (the username, the key's name; "anonymous" and "system" by default for those kinds), and
 * `onBehalfOf` the owner's user id for an API key. Production code builds actors with the helpers of
 * `audit-actor.ts`, so that every event names its actor as the contract says.
 */
export interface AuditActor {
  kind: "user" | "api_key" | "anonymous" | "system";
  id?: string;
  display?: string;
  onBehalfOf?: string;
}

/**
 * One security event as reported by the code that saw it. `type` names it in dotted lower case
 * (`auth.login`, `api_key.create`). Never pass secrets: they are not needed to explain an event, and
 * although metadata under secret-looking keys is redacted, free-text fields are stored as given
 * (bounded and without control characters).
 */
export interface AuditEventInput {
  type: string;
  outcome: AuditOutcome;
  actor?: AuditActor;
  target?: { kind: string; id: string };
  ip?: string;
  userAgent?: string;
  requestId?: string;
  /** The RPC, as `/package.Service/Method`. */
  method?: string;
  /** Why it failed or was denied, for people reading the log; not a client-facing message. */
  reason?: string;
  metadata?: Record<string, string | number | boolean>;
}

/**
 * An audit event as stored in the `audit_events` collection. Absent optional fields are absent in the
 * document, never null.
 *
 * - `_id`: `<recorderId>:<recorderSeq>`, so a retried write of the same event is recognisably the same.
 * - `time`: when the recorder accepted the event (not when it was written); the chain raises it to the
 *   previous event's time where that is later, so times never decrease along the chain (`chainRecords`).
 * - `type`, `outcome`, `actor`, `target`, `ip`, `userAgent`, `requestId`, `method`, `reason`, `metadata`:
 *   the input, validated, bounded and redacted (see `sanitizeAuditEvent`).
 * - `recorderId`: random per recorder (one per process); `recorderSeq`: 1, 2, 3… within it, in the
 *   order events were recorded. Together they order one process's events even when times tie.
 *
 * A later hash chain adds a global `seq`, `prevHash` and `hash` over `canonicalAuditContent(record)`.
 */
export interface AuditRecord {
  readonly _id: string;
  readonly time: Date;
  readonly type: string;
  readonly outcome: AuditOutcome;
  readonly actor?: Readonly<AuditActor>;
  readonly target?: Readonly<{ kind: string; id: string }>;
  readonly ip?: string;
  readonly userAgent?: string;
  readonly requestId?: string;
  readonly method?: string;
  readonly reason?: string;
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
  readonly recorderId: string;
  readonly recorderSeq: number;
}

/** Where the recorder writes; implemented by `src/store/audit-store.ts`. */
export interface AuditStore {
  /**
   * Durably writes the records, in order. Writing a record whose `_id` is already stored is not an
   * error (it is the same event, from a retry). Rejects if any record may not have been written.
   */
  append(records: readonly AuditRecord[]): Promise<void>;
}
