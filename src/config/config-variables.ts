import { availableParallelism } from "node:os";
import { aiProviders } from "./ai-config.ts";
import * as parse from "./parsers.ts";
import type { Parser } from "./parsers.ts";

/**
 * One configuration variable: its name, its default (stated once: the raw text parsed like a set value,
 * or a label when the default is computed or absent), what it means, and how it is parsed. The README's
 * table documents exactly these rows.
 */
export interface ConfigVariable<T = unknown> {
  readonly name: string;
  /** The raw default, parsed like a set value; undefined when unset means "none" or is computed. */
  readonly fallback: string | undefined;
  /** The default as documented: `fallback`, or a label such as "(generated)". */
  readonly default: string;
  readonly description: string;
  readonly parse: Parser<T>;
}

/** A variable with a default always has a value. */
export type DefaultedVariable<T> = ConfigVariable<T> & { readonly fallback: string };

function variable<T>(name: string, fallback: string, description: string, parser: Parser<T>): DefaultedVariable<T>;
function variable<T>(name: string, fallback: { label: string }, description: string, parser: Parser<T>): ConfigVariable<T>;
function variable<T>(name: string, fallback: string | { label: string }, description: string, parser: Parser<T>): ConfigVariable<T> {
  const raw = typeof fallback === "string" ? fallback : undefined;
  return { name, fallback: raw, default: raw ?? (fallback as { label: string }).label, description, parse: parser };
}

const NONE = { label: "(none)" };

/** Defaults computed at start, as their rows' labels state them. */
export const COMPUTED_DEFAULTS = {
  /** cores − 1, at least 1, at most 4: speech leaves a core to the gateway. */
  ttsEngineProcesses: () => Math.min(4, Math.max(1, availableParallelism() - 1)),
  /** 1024, or PORTCULLIS_AI_MAX_TOKENS when that is lower. */
  aiDefaultMaxTokens: (maxTokens: number) => Math.min(1024, maxTokens),
};
const GENERATED = { label: "(generated)" };
const PER_MINUTE = parse.integer(1, 10_000_000);
const SECONDS_TO_MS = 1000;
const DAYS_TO_MS = 86_400_000;

/** Every variable the gateway reads, keyed by the name the code uses for it. */
export const VARIABLES = {
  configFile: variable("PORTCULLIS_CONFIG_FILE", NONE, "Optional JSON file of these variables; the environment wins over the file.", parse.path),
  host: variable("PORTCULLIS_HOST", "127.0.0.1", "Interface to listen on.", parse.host),
  port: variable("PORTCULLIS_PORT", "50051", "Port for gRPC, gRPC-Web and Connect (0 picks a free port).", parse.integer(0, 65535)),
  dataDir: variable("PORTCULLIS_DATA_DIR", "./data", "Local state: embedded database, key file, logs of the embedded database.", parse.path),
  mongodbUri: variable("MONGODB_URI", { label: "(embedded)" }, "External MongoDB. Unset: a local MongoDB-compatible server is provisioned under the data directory.", parse.mongoUri),
  dbName: variable("PORTCULLIS_DB_NAME", "portcullis", "Database name.", parse.dbName),
  toolsDir: variable("PORTCULLIS_TOOLS_DIR", { label: "~/.cache/portcullis" }, "Where tools Portcullis builds for itself (FerretDB, grpcurl for tests) are kept.", parse.path),
  tlsCert: variable("PORTCULLIS_TLS_CERT", NONE, "PEM certificate file; with PORTCULLIS_TLS_KEY enables TLS (ALPN h2 and http/1.1).", parse.path),
  tlsKey: variable("PORTCULLIS_TLS_KEY", NONE, "PEM private key file for PORTCULLIS_TLS_CERT.", parse.path),
  logLevel: variable("PORTCULLIS_LOG_LEVEL", "info", "fatal, error, warn, info, debug, trace or silent.", parse.oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const)),
  shutdownTimeoutMs: variable("PORTCULLIS_SHUTDOWN_TIMEOUT_MS", "10000", "Grace period for in-flight calls and streams on SIGTERM/SIGINT.", parse.integer(0, 600_000)),
  headersTimeoutMs: variable(
    "PORTCULLIS_HEADERS_TIMEOUT_MS",
    "10000",
    "A request's headers must arrive within this time of the connection opening (or, on HTTP/1.1 keep-alive, of the request's first byte); also the TLS handshake limit. Else HTTP/1.1 gets 408 and the connection closes.",
    parse.integer(100, 600_000),
  ),
  bodyTimeoutMs: variable(
    "PORTCULLIS_BODY_TIMEOUT_MS",
    "30000",
    "Longest a request body may stall (no byte received while the server waits for one) before the call is cut: 408 and close on HTTP/1.1, RST_STREAM on HTTP/2. Responses, including long server streams, are never cut by it.",
    parse.integer(100, 3_600_000),
  ),
  idleTimeoutMs: variable(
    "PORTCULLIS_IDLE_TIMEOUT_MS",
    "60000",
    "A connection with no call in progress is closed after this time (HTTP/2: GOAWAY). An open stream, however quiet, keeps its connection.",
    parse.integer(100, 3_600_000),
  ),
  reflection: variable("PORTCULLIS_REFLECTION", "true", "Serve gRPC server reflection (v1 and v1alpha).", parse.boolean),
  keyFile: variable("PORTCULLIS_KEY_FILE", { label: "<data dir>/keys.json" }, "Generated signing and encryption keys, created on first start with mode 0600.", parse.path),
  encryptionKey: variable(
    "PORTCULLIS_ENCRYPTION_KEY",
    GENERATED,
    "32 bytes, base64: the AES-256-GCM key for secrets at rest (TOTP secrets, provider credentials). Instances sharing a database must share it.",
    parse.key,
  ),
  apiKeyPepper: variable("PORTCULLIS_API_KEY_PEPPER", GENERATED, "32 bytes, base64: the HMAC key for API-key hashes. Instances sharing a database must share it.", parse.key),
  maxMessageBytes: variable("PORTCULLIS_MAX_MESSAGE_BYTES", "4194304", "Largest accepted request message.", parse.integer(1024, 64 * 1024 * 1024)),
  corsOrigins: variable("PORTCULLIS_CORS_ORIGINS", NONE, "Comma-separated browser origins allowed by CORS, e.g. https://console.example.com.", parse.origins),
  jwtIssuer: variable("PORTCULLIS_JWT_ISSUER", "portcullis", "`iss` of issued access tokens, checked on every verification.", parse.text),
  jwtAudience: variable("PORTCULLIS_JWT_AUDIENCE", "portcullis", "`aud` of issued access tokens, checked on every verification.", parse.text),
  accessTtlMs: variable("PORTCULLIS_ACCESS_TOKEN_TTL_SECONDS", "900", "Lifetime of access tokens (JWT, EdDSA).", parse.integer(30, 86_400, SECONDS_TO_MS)),
  refreshTtlMs: variable("PORTCULLIS_REFRESH_TOKEN_TTL_SECONDS", "604800", "Lifetime of refresh tokens (rotated on every use).", parse.integer(60, 90 * 86_400, SECONDS_TO_MS)),
  leewayMs: variable("PORTCULLIS_TOKEN_LEEWAY_SECONDS", "30", "Clock skew tolerated when checking token expiry.", parse.integer(0, 300, SECONDS_TO_MS)),
  signingKeyRotationMs: variable(
    "PORTCULLIS_SIGNING_KEY_ROTATION_DAYS",
    "30",
    "Age at which the JWT signing key is rotated (old public keys verify until their tokens expire).",
    parse.integer(1, 3650, DAYS_TO_MS),
  ),
  apiKeyPrefix: variable("PORTCULLIS_API_KEY_PREFIX", "sk", "Prefix of API key strings (`<prefix>_<id>_<secret><checksum>`): 1–12 lower-case letters or digits, starting with a letter.", parse.word),
  apiKeyDefaultTtlMs: variable("PORTCULLIS_API_KEY_DEFAULT_TTL_DAYS", "90", "Lifetime of an API key created without an expiry.", parse.integer(1, 3650, DAYS_TO_MS)),
  apiKeyMaxTtlMs: variable("PORTCULLIS_API_KEY_MAX_TTL_DAYS", "365", "Longest lifetime a key may be given.", parse.integer(1, 3650, DAYS_TO_MS)),
  apiKeyAllowNoExpiry: variable("PORTCULLIS_API_KEY_ALLOW_NO_EXPIRY", "false", "Whether keys that never expire may be created (discouraged).", parse.boolean),
  apiKeyMaxPerUser: variable("PORTCULLIS_API_KEY_MAX_PER_USER", "100", "Most active keys one user may hold.", parse.integer(1, 100_000)),
  apiKeySelfServiceTier: variable(
    "PORTCULLIS_API_KEY_SELF_SERVICE_TIER",
    "standard",
    "Highest rate-limit tier (basic, standard or premium) a caller without `users.manage` may give their own keys; a higher one is PERMISSION_DENIED.",
    parse.oneOf(["basic", "standard", "premium"] as const),
  ),
  passwordMemoryKiB: variable("PORTCULLIS_PASSWORD_HASH_MEMORY_KIB", "19456", "argon2id memory cost (at least 19456, OWASP's minimum).", parse.integer(19_456, 4_194_304)),
  passwordTimeCost: variable("PORTCULLIS_PASSWORD_HASH_TIME_COST", "2", "argon2id iterations (at least 2).", parse.integer(2, 100)),
  rateLimitDefault: variable("PORTCULLIS_RATE_LIMIT_DEFAULT", "600", "Requests per minute per principal for ordinary calls.", PER_MINUTE),
  rateLimitCredential: variable("PORTCULLIS_RATE_LIMIT_CREDENTIAL", "30", "Requests per minute per principal or IP for calls that check a secret (login, refresh, key exchange).", PER_MINUTE),
  rateLimitExpensive: variable("PORTCULLIS_RATE_LIMIT_EXPENSIVE", "60", "Requests per minute per principal for LLM, speech and export calls.", PER_MINUTE),
  rateLimitAdmin: variable("PORTCULLIS_RATE_LIMIT_ADMIN", "120", "Requests per minute per principal for administrative calls.", PER_MINUTE),
  rateLimitInfrastructure: variable("PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE", "6000", "Requests per minute per principal or IP for health, reflection and JWKS.", PER_MINUTE),
  failedAuthenticationsPerMinute: variable(
    "PORTCULLIS_RATE_LIMIT_FAILED_AUTH",
    "60",
    "Failed authentications (bad token, key, password or refresh token) per minute per client IP (IPv6: per /64); past it, calls from that address that present credentials are refused with RESOURCE_EXHAUSTED before any database work.",
    PER_MINUTE,
  ),
  auditRetentionMs: variable(
    "PORTCULLIS_AUDIT_RETENTION_DAYS",
    "365",
    "Audit events older than this are deleted (oldest first, behind a signed retention checkpoint).",
    parse.integer(1, 36_500, DAYS_TO_MS),
  ),
  auditHeadSignIntervalMs: variable(
    "PORTCULLIS_AUDIT_HEAD_SIGN_INTERVAL_SECONDS",
    "60",
    "How often the audit chain head is signed with the JWT signing key (also signed on every VerifyAuditChain and export).",
    parse.integer(1, 86_400, SECONDS_TO_MS),
  ),
  auditWatchHeartbeatMs: variable("PORTCULLIS_AUDIT_WATCH_HEARTBEAT_SECONDS", "15", "Heartbeat period of an idle WatchAuditEvents stream (1-30).", parse.integer(1, 30, SECONDS_TO_MS)),
  auditFailedLoginsPerUser: variable(
    "PORTCULLIS_AUDIT_FAILED_LOGINS_PER_USER",
    "5",
    "Failed logins for one account in the window that make a finding (twice as many: critical).",
    parse.integer(1, 1_000_000),
  ),
  auditFailedLoginsPerIp: variable("PORTCULLIS_AUDIT_FAILED_LOGINS_PER_IP", "20", "Failed logins from one IP address that make a finding (twice as many: critical).", parse.integer(1, 1_000_000)),
  auditMfaFailures: variable("PORTCULLIS_AUDIT_MFA_FAILURES", "5", "Wrong MFA codes for one user that make a finding (twice as many: critical).", parse.integer(1, 1_000_000)),
  auditPermissionDeniedBurst: variable("PORTCULLIS_AUDIT_PERMISSION_DENIED_BURST", "20", "Denied calls by one principal that make a finding (twice as many: critical).", parse.integer(1, 1_000_000)),
  auditApiKeyDistinctIps: variable("PORTCULLIS_AUDIT_API_KEY_DISTINCT_IPS", "5", "Distinct IP addresses using one API key that make a finding (twice as many: critical).", parse.integer(2, 1_000_000)),
  auditAutoResponse: variable(
    "PORTCULLIS_AUDIT_AUTO_RESPONSE",
    { label: "(off)" },
    "Automatic response rules, comma-separated `finding_kind:action`, e.g. `refresh_token_reuse:revoke_session,failed_logins_per_user:lock_account`. Actions: lock_account, revoke_session, revoke_api_key.",
    parse.list,
  ),
  auditAutoResponseMinSeverity: variable(
    "PORTCULLIS_AUDIT_AUTO_RESPONSE_MIN_SEVERITY",
    "critical",
    "Only findings at or above this severity (low, medium, high, critical) trigger an automatic response.",
    parse.oneOf(["low", "medium", "high", "critical"] as const),
  ),
  auditAutoLockMs: variable("PORTCULLIS_AUDIT_AUTO_LOCK_MINUTES", "15", "How long lock_account locks an account (its sessions are revoked at once).", parse.integer(1, 525_600, 60_000)),
  auditAutoResponseIntervalMs: variable(
    "PORTCULLIS_AUDIT_AUTO_RESPONSE_INTERVAL_SECONDS",
    "30",
    "How often findings of the last 24 hours are evaluated against the automatic response rules.",
    parse.integer(1, 86_400, SECONDS_TO_MS),
  ),
  ttsEngineProcesses: variable(
    "PORTCULLIS_TTS_ENGINE_PROCESSES",
    { label: "cores − 1 (at least 1, at most 4)" },
    "Speech engine (eSpeak NG) processes: each synthesises one sentence at a time, so this bounds the CPU speech can take. Started on first use.",
    parse.integer(1, 64),
  ),
  audioMaxStreamsPerPrincipal: variable(
    "PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL",
    "4",
    "Audio streams one user or API key may have open at once; more are refused with RESOURCE_EXHAUSTED.",
    parse.integer(1, 1000),
  ),
  aiProviders: variable(
    "PORTCULLIS_AI_PROVIDERS",
    { label: "(local only)" },
    "The AI providers: a JSON array, or `@file.json`, of `{name, kind: openai|anthropic|local, baseUrl, defaultModel, models, credential, timeoutMs, default}`. Unset: only the built-in `local` responder.",
    aiProviders,
  ),
  aiDefaultMaxTokens: variable("PORTCULLIS_AI_DEFAULT_MAX_TOKENS", { label: "1024" }, "max_tokens of a query that sets none.", parse.integer(1, 1_000_000)),
  aiMaxTokens: variable("PORTCULLIS_AI_MAX_TOKENS", "4096", "The cap on a query's max_tokens (larger values are lowered to it).", parse.integer(1, 1_000_000)),
  aiMaxPromptChars: variable("PORTCULLIS_AI_MAX_PROMPT_CHARS", "100000", "Most characters of system prompt, prompt and messages in one query (INVALID_ARGUMENT beyond).", parse.integer(1, 50_000_000)),
  aiMaxMessages: variable("PORTCULLIS_AI_MAX_MESSAGES", "100", "Most messages in one query's conversation (INVALID_ARGUMENT beyond).", parse.integer(1, 10_000)),
  aiProbeIntervalMs: variable(
    "PORTCULLIS_AI_PROBE_INTERVAL_SECONDS",
    "30",
    "How often each provider's health is probed (a model listing, never a completion).",
    parse.integer(1, 86_400, SECONDS_TO_MS),
  ),
  credentialKeyVersion: variable(
    "PORTCULLIS_CREDENTIAL_KEY_VERSION",
    "1",
    "Version of the key-encryption key (derived from PORTCULLIS_ENCRYPTION_KEY) that wraps provider credentials; raise it, then call RotateCredentialEncryption.",
    parse.integer(1, 1_000_000),
  ),
  jobConcurrency: variable("PORTCULLIS_JOB_CONCURRENCY", "4", "AI jobs one instance runs at once (0: it runs none, it only queues and serves them).", parse.integer(0, 1000)),
  jobLeaseMs: variable(
    "PORTCULLIS_JOB_LEASE_MS",
    "30000",
    "A running job's lease, renewed every third of it; another instance takes the job over once it expires (its instance died).",
    parse.integer(300, 3_600_000),
  ),
  jobMaxAttempts: variable(
    "PORTCULLIS_JOB_MAX_ATTEMPTS",
    "3",
    "Runs of a job in all before it fails for good (failed or interrupted runs are retried with backoff; a hand-over at shutdown does not count).",
    parse.integer(1, 100),
  ),
  jobRetryBaseMs: variable("PORTCULLIS_JOB_RETRY_BASE_MS", "1000", "Backoff before the first retry of a failed run; doubled for each further one, with jitter.", parse.integer(0, 3_600_000)),
  jobMaxUnfinishedPerUser: variable(
    "PORTCULLIS_JOB_MAX_UNFINISHED_PER_USER",
    "100",
    "Queued or running jobs one user (with all their API keys) may have; more is RESOURCE_EXHAUSTED.",
    parse.integer(1, 100_000),
  ),
  jobExportMaxJobs: variable(
    "PORTCULLIS_JOB_EXPORT_MAX_JOBS",
    "10000",
    "Most jobs one ExportJobs call exports; more matching jobs is RESOURCE_EXHAUSTED (narrow the filter).",
    parse.integer(1, 10_000_000),
  ),
  jobEventRetentionMs: variable(
    "PORTCULLIS_JOB_EVENT_RETENTION_DAYS",
    "30",
    "A finished job's events are removed this many days after it finished (the job stays); WatchJob then answers OUT_OF_RANGE.",
    parse.integer(1, 36_500, DAYS_TO_MS),
  ),
  jobPollMaxMs: variable(
    "PORTCULLIS_JOB_POLL_MAX_MS",
    "1000",
    "Slowest poll of an idle instance for queued jobs and hand-overs (change streams wake it at once where the database has them).",
    parse.integer(10, 60_000),
  ),
} as const;

/** The documented rows, in the README's order. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = Object.values(VARIABLES);
