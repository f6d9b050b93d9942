import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { isAbsolute, resolve } from "node:path";
import type { RateLimitTier } from "../domain/api-keys/api-key-record.ts";
import { API_KEY_PREFIX_PATTERN } from "../domain/api-keys/key-format.ts";
import { AI_CONFIG_VARIABLES, parseAiConfig, type AiConfig } from "./ai-config.ts";
import { JOBS_CONFIG_VARIABLES, parseJobsConfig, type JobsConfig } from "./jobs-config.ts";
import { ACTIONS_FOR_KIND, RESPONSE_ACTIONS, type ResponseActionName } from "../domain/audit/auto-response.ts";
import { FINDING_KINDS, type FindingKind, type Severity } from "../domain/audit/suspicious-activity.ts";

/** The rate-limit classes declared by `(portcullis.v1.access).rate_limit`, as configured budgets. */
export type RateLimitClassName = "default" | "credential" | "expensive" | "admin" | "infrastructure";

/** Requests per minute allowed for one principal (or one client IP when anonymous) in one class. */
export type RateLimits = Readonly<Record<RateLimitClassName, number>>;

/** The gateway's configuration, parsed once at start and frozen. */
export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** An external MongoDB; undefined means "provision the embedded default under dataDir". */
  readonly mongodbUri: string | undefined;
  readonly dbName: string;
  /** Where self-built tools (FerretDB) are cached; undefined means the launcher's default. */
  readonly toolsDir: string | undefined;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** How long in-flight calls and streams may run on after SIGTERM before they are cut off. */
  readonly shutdownTimeoutMs: number;
  /** Whether gRPC server reflection is served (grpcurl list/describe). */
  readonly reflection: boolean;
  /** The file holding generated signing and encryption keys (owner-only permissions). */
  readonly keyFile: string;
  /** Largest accepted request message, per message. */
  readonly maxMessageBytes: number;
  /** How long a slow or silent client may hold a connection (see src/transport/slow-client-guard.ts). */
  readonly clientTimeouts: {
    /** A request's headers must have arrived this long after the connection (or the request) began. */
    readonly headersMs: number;
    /** A request body may go this long without a byte while the server waits for one. */
    readonly bodyMs: number;
    /** A connection with no request in progress is closed after this long. */
    readonly idleMs: number;
  };
  /** Browser origins allowed to call the API through CORS (Connect-Web, gRPC-Web). */
  readonly corsOrigins: readonly string[];
  readonly rateLimits: RateLimits;
  /** Failed authentications one client address (IPv6: /64) may make per minute before it is refused. */
  readonly failedAuthenticationsPerMinute: number;
  readonly tokens: {
    readonly issuer: string;
    readonly audience: string;
    readonly accessTtlMs: number;
    readonly refreshTtlMs: number;
    readonly leewayMs: number;
    readonly signingKeyRotationMs: number;
  };
  /** API keys: string prefix, lifetime policy and the per-user limit. */
  readonly apiKeys: {
    readonly prefix: string;
    readonly defaultTtlMs: number;
    readonly maxTtlMs: number;
    readonly allowNoExpiry: boolean;
    readonly maxPerUser: number;
    /** The highest tier a caller without `users.manage` may give their own keys. */
    readonly selfServiceTier: RateLimitTier;
  };
  /** argon2id cost; raising it re-hashes each password transparently at its next login. */
  readonly passwordHash: { readonly memoryKiB: number; readonly timeCost: number; readonly parallelism: number };
  /** Deployment-supplied key material (32 bytes each); when absent the key file's generated keys are used. */
  readonly suppliedKeys: { readonly encryptionKey: Buffer | undefined; readonly apiKeyPepper: Buffer | undefined };
  readonly audit: AuditConfig;
  /** Speech: engine processes (they bound the CPU synthesis takes) and open streams per caller. */
  readonly audio: { readonly engineProcesses: number; readonly maxStreamsPerPrincipal: number };
  /** AI providers and query limits (parsed in ./ai-config.ts). */
  readonly ai: AiConfig;
  /** AI jobs: workers, leases, retries and limits (parsed in ./jobs-config.ts). */
  readonly jobs: JobsConfig;
}

/** The audit log: retention, head signing, live tail, suspicious-activity thresholds and automatic response. */
export interface AuditConfig {
  readonly retentionMs: number;
  readonly headSignIntervalMs: number;
  readonly watchHeartbeatMs: number;
  readonly thresholds: {
    readonly failedLoginsPerUser: number;
    readonly failedLoginsPerIp: number;
    readonly mfaFailures: number;
    readonly permissionDeniedBurst: number;
    readonly apiKeyDistinctIps: number;
  };
  /** Empty: automatic response is off (the default). */
  readonly autoResponse: {
    readonly rules: readonly { readonly kind: FindingKind; readonly action: ResponseActionName }[];
    readonly minSeverity: Severity;
    readonly lockDurationMs: number;
    readonly intervalMs: number;
  };
}

/** A configuration value that is missing or malformed; the message names the variable. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** One row of the configuration table: the README documents exactly these. */
export interface ConfigVariable {
  readonly name: string;
  readonly default: string;
  readonly description: string;
}

export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  { name: "PORTCULLIS_CONFIG_FILE", default: "(none)", description: "Optional JSON file of these variables; the environment wins over the file." },
  { name: "PORTCULLIS_HOST", default: "127.0.0.1", description: "Interface to listen on." },
  { name: "PORTCULLIS_PORT", default: "50051", description: "Port for gRPC, gRPC-Web and Connect (0 picks a free port)." },
  { name: "PORTCULLIS_DATA_DIR", default: "./data", description: "Local state: embedded database, key file, logs of the embedded database." },
  { name: "MONGODB_URI", default: "(embedded)", description: "External MongoDB. Unset: a local MongoDB-compatible server is provisioned under the data directory." },
  { name: "PORTCULLIS_DB_NAME", default: "portcullis", description: "Database name." },
  { name: "PORTCULLIS_TOOLS_DIR", default: "~/.cache/portcullis", description: "Where tools Portcullis builds for itself (FerretDB, grpcurl for tests) are kept." },
  { name: "PORTCULLIS_TLS_CERT", default: "(none)", description: "PEM certificate file; with PORTCULLIS_TLS_KEY enables TLS (ALPN h2 and http/1.1)." },
  { name: "PORTCULLIS_TLS_KEY", default: "(none)", description: "PEM private key file for PORTCULLIS_TLS_CERT." },
  { name: "PORTCULLIS_LOG_LEVEL", default: "info", description: "fatal, error, warn, info, debug, trace or silent." },
  { name: "PORTCULLIS_SHUTDOWN_TIMEOUT_MS", default: "10000", description: "Grace period for in-flight calls and streams on SIGTERM/SIGINT." },
  { name: "PORTCULLIS_REFLECTION", default: "true", description: "Serve gRPC server reflection (v1 and v1alpha)." },
  { name: "PORTCULLIS_KEY_FILE", default: "<data dir>/keys.json", description: "Generated signing and encryption keys, created on first start with mode 0600." },
  { name: "PORTCULLIS_ENCRYPTION_KEY", default: "(generated)", description: "32 bytes, base64: the AES-256-GCM key for secrets at rest (TOTP secrets, provider credentials). Instances sharing a database must share it." },
  { name: "PORTCULLIS_API_KEY_PEPPER", default: "(generated)", description: "32 bytes, base64: the HMAC key for API-key hashes. Instances sharing a database must share it." },
  { name: "PORTCULLIS_MAX_MESSAGE_BYTES", default: "4194304", description: "Largest accepted request message." },
  { name: "PORTCULLIS_HEADERS_TIMEOUT_MS", default: "10000", description: "A request's headers must arrive within this time of the connection opening (or, on HTTP/1.1 keep-alive, of the request's first byte); also the TLS handshake limit. Else HTTP/1.1 gets 408 and the connection closes." },
  { name: "PORTCULLIS_BODY_TIMEOUT_MS", default: "30000", description: "Longest a request body may stall (no byte received while the server waits for one) before the call is cut: 408 and close on HTTP/1.1, RST_STREAM on HTTP/2. Responses, including long server streams, are never cut by it." },
  { name: "PORTCULLIS_IDLE_TIMEOUT_MS", default: "60000", description: "A connection with no call in progress is closed after this time (HTTP/2: GOAWAY). An open stream, however quiet, keeps its connection." },
  { name: "PORTCULLIS_CORS_ORIGINS", default: "(none)", description: "Comma-separated browser origins allowed by CORS, e.g. https://console.example.com." },
  { name: "PORTCULLIS_JWT_ISSUER", default: "portcullis", description: "`iss` of issued access tokens, checked on every verification." },
  { name: "PORTCULLIS_JWT_AUDIENCE", default: "portcullis", description: "`aud` of issued access tokens, checked on every verification." },
  { name: "PORTCULLIS_ACCESS_TOKEN_TTL_SECONDS", default: "900", description: "Lifetime of access tokens (JWT, EdDSA)." },
  { name: "PORTCULLIS_REFRESH_TOKEN_TTL_SECONDS", default: "604800", description: "Lifetime of refresh tokens (rotated on every use)." },
  { name: "PORTCULLIS_TOKEN_LEEWAY_SECONDS", default: "30", description: "Clock skew tolerated when checking token expiry." },
  { name: "PORTCULLIS_SIGNING_KEY_ROTATION_DAYS", default: "30", description: "Age at which the JWT signing key is rotated (old public keys verify until their tokens expire)." },
  { name: "PORTCULLIS_API_KEY_PREFIX", default: "sk", description: "Prefix of API key strings (`<prefix>_<id>_<secret><checksum>`): 1–12 lower-case letters or digits, starting with a letter." },
  { name: "PORTCULLIS_API_KEY_DEFAULT_TTL_DAYS", default: "90", description: "Lifetime of an API key created without an expiry." },
  { name: "PORTCULLIS_API_KEY_MAX_TTL_DAYS", default: "365", description: "Longest lifetime a key may be given." },
  { name: "PORTCULLIS_API_KEY_ALLOW_NO_EXPIRY", default: "false", description: "Whether keys that never expire may be created (discouraged)." },
  { name: "PORTCULLIS_API_KEY_MAX_PER_USER", default: "100", description: "Most active keys one user may hold." },
  { name: "PORTCULLIS_API_KEY_SELF_SERVICE_TIER", default: "standard", description: "Highest rate-limit tier (basic, standard or premium) a caller without `users.manage` may give their own keys; a higher one is PERMISSION_DENIED." },
  { name: "PORTCULLIS_PASSWORD_HASH_MEMORY_KIB", default: "19456", description: "argon2id memory cost (at least 19456, OWASP's minimum)." },
  { name: "PORTCULLIS_PASSWORD_HASH_TIME_COST", default: "2", description: "argon2id iterations (at least 2)." },
  { name: "PORTCULLIS_RATE_LIMIT_DEFAULT", default: "600", description: "Requests per minute per principal for ordinary calls." },
  { name: "PORTCULLIS_RATE_LIMIT_CREDENTIAL", default: "30", description: "Requests per minute per principal or IP for calls that check a secret (login, refresh, key exchange)." },
  { name: "PORTCULLIS_RATE_LIMIT_EXPENSIVE", default: "60", description: "Requests per minute per principal for LLM, speech and export calls." },
  { name: "PORTCULLIS_RATE_LIMIT_ADMIN", default: "120", description: "Requests per minute per principal for administrative calls." },
  { name: "PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE", default: "6000", description: "Requests per minute per principal or IP for health, reflection and JWKS." },
  { name: "PORTCULLIS_RATE_LIMIT_FAILED_AUTH", default: "60", description: "Failed authentications (bad token, key, password or refresh token) per minute per client IP (IPv6: per /64); past it, calls from that address that present credentials are refused with RESOURCE_EXHAUSTED before any database work." },
  { name: "PORTCULLIS_AUDIT_RETENTION_DAYS", default: "365", description: "Audit events older than this are deleted (oldest first, behind a signed retention checkpoint)." },
  { name: "PORTCULLIS_AUDIT_HEAD_SIGN_INTERVAL_SECONDS", default: "60", description: "How often the audit chain head is signed with the JWT signing key (also signed on every VerifyAuditChain and export)." },
  { name: "PORTCULLIS_AUDIT_WATCH_HEARTBEAT_SECONDS", default: "15", description: "Heartbeat period of an idle WatchAuditEvents stream (1-30)." },
  { name: "PORTCULLIS_AUDIT_FAILED_LOGINS_PER_USER", default: "5", description: "Failed logins for one account in the window that make a finding (twice as many: critical)." },
  { name: "PORTCULLIS_AUDIT_FAILED_LOGINS_PER_IP", default: "20", description: "Failed logins from one IP address that make a finding (twice as many: critical)." },
  { name: "PORTCULLIS_AUDIT_MFA_FAILURES", default: "5", description: "Wrong MFA codes for one user that make a finding (twice as many: critical)." },
  { name: "PORTCULLIS_AUDIT_PERMISSION_DENIED_BURST", default: "20", description: "Denied calls by one principal that make a finding (twice as many: critical)." },
  { name: "PORTCULLIS_AUDIT_API_KEY_DISTINCT_IPS", default: "5", description: "Distinct IP addresses using one API key that make a finding (twice as many: critical)." },
  { name: "PORTCULLIS_AUDIT_AUTO_RESPONSE", default: "(off)", description: "Automatic response rules, comma-separated `finding_kind:action`, e.g. `refresh_token_reuse:revoke_session,failed_logins_per_user:lock_account`. Actions: lock_account, revoke_session, revoke_api_key." },
  { name: "PORTCULLIS_AUDIT_AUTO_RESPONSE_MIN_SEVERITY", default: "critical", description: "Only findings at or above this severity (low, medium, high, critical) trigger an automatic response." },
  { name: "PORTCULLIS_AUDIT_AUTO_LOCK_MINUTES", default: "15", description: "How long lock_account locks an account (its sessions are revoked at once)." },
  { name: "PORTCULLIS_AUDIT_AUTO_RESPONSE_INTERVAL_SECONDS", default: "30", description: "How often findings of the last 24 hours are evaluated against the automatic response rules." },
  { name: "PORTCULLIS_TTS_ENGINE_PROCESSES", default: "cores − 1 (at least 1, at most 4)", description: "Speech engine (eSpeak NG) processes: each synthesises one sentence at a time, so this bounds the CPU speech can take. Started on first use." },
  { name: "PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL", default: "4", description: "Audio streams one user or API key may have open at once; more are refused with RESOURCE_EXHAUSTED." },
  ...AI_CONFIG_VARIABLES,
  ...JOBS_CONFIG_VARIABLES,
];

const KNOWN = new Set(CONFIG_VARIABLES.map((v) => v.name));

type Source = Readonly<Record<string, string | undefined>>;

/**
 * Parses the configuration from the environment and the optional PORTCULLIS_CONFIG_FILE.
 * Throws ConfigError naming the first bad variable; callers print its message and exit.
 */
export function loadConfig(env: Source = process.env, cwd: string = process.cwd()): Config {
  const source = { ...readConfigFile(env, cwd), ...definedOnly(env) };
  const get = (name: string): string | undefined => {
    const value = source[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  };
  const dataDir = absolute(get("PORTCULLIS_DATA_DIR") ?? "./data", cwd);
  const certFile = get("PORTCULLIS_TLS_CERT");
  const keyFile = get("PORTCULLIS_TLS_KEY");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? "PORTCULLIS_TLS_CERT" : "PORTCULLIS_TLS_KEY", "TLS needs both PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY");
  }
  const config: Config = {
    host: parseHost(get("PORTCULLIS_HOST") ?? "127.0.0.1"),
    port: parseInteger("PORTCULLIS_PORT", get("PORTCULLIS_PORT"), 50051, 0, 65535),
    dataDir,
    mongodbUri: parseMongoUri(get("MONGODB_URI")),
    dbName: parseDbName(get("PORTCULLIS_DB_NAME") ?? "portcullis"),
    toolsDir: ((dir) => (dir === undefined ? undefined : absolute(dir, cwd)))(get("PORTCULLIS_TOOLS_DIR")),
    tls: certFile && keyFile ? Object.freeze({ certFile: absolute(certFile, cwd), keyFile: absolute(keyFile, cwd) }) : undefined,
    logLevel: parseEnum("PORTCULLIS_LOG_LEVEL", get("PORTCULLIS_LOG_LEVEL") ?? "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
    shutdownTimeoutMs: parseInteger("PORTCULLIS_SHUTDOWN_TIMEOUT_MS", get("PORTCULLIS_SHUTDOWN_TIMEOUT_MS"), 10_000, 0, 600_000),
    reflection: parseBoolean("PORTCULLIS_REFLECTION", get("PORTCULLIS_REFLECTION"), true),
    keyFile: absolute(get("PORTCULLIS_KEY_FILE") ?? resolve(dataDir, "keys.json"), cwd),
    maxMessageBytes: parseInteger("PORTCULLIS_MAX_MESSAGE_BYTES", get("PORTCULLIS_MAX_MESSAGE_BYTES"), 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    clientTimeouts: Object.freeze({
      headersMs: parseInteger("PORTCULLIS_HEADERS_TIMEOUT_MS", get("PORTCULLIS_HEADERS_TIMEOUT_MS"), 10_000, 100, 600_000),
      bodyMs: parseInteger("PORTCULLIS_BODY_TIMEOUT_MS", get("PORTCULLIS_BODY_TIMEOUT_MS"), 30_000, 100, 3_600_000),
      idleMs: parseInteger("PORTCULLIS_IDLE_TIMEOUT_MS", get("PORTCULLIS_IDLE_TIMEOUT_MS"), 60_000, 100, 3_600_000),
    }),
    corsOrigins: Object.freeze(parseOrigins(get("PORTCULLIS_CORS_ORIGINS"))),
    rateLimits: Object.freeze({
      default: parseInteger("PORTCULLIS_RATE_LIMIT_DEFAULT", get("PORTCULLIS_RATE_LIMIT_DEFAULT"), 600, 1, 10_000_000),
      credential: parseInteger("PORTCULLIS_RATE_LIMIT_CREDENTIAL", get("PORTCULLIS_RATE_LIMIT_CREDENTIAL"), 30, 1, 10_000_000),
      expensive: parseInteger("PORTCULLIS_RATE_LIMIT_EXPENSIVE", get("PORTCULLIS_RATE_LIMIT_EXPENSIVE"), 60, 1, 10_000_000),
      admin: parseInteger("PORTCULLIS_RATE_LIMIT_ADMIN", get("PORTCULLIS_RATE_LIMIT_ADMIN"), 120, 1, 10_000_000),
      infrastructure: parseInteger("PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE", get("PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE"), 6000, 1, 10_000_000),
    }),
    failedAuthenticationsPerMinute: parseInteger("PORTCULLIS_RATE_LIMIT_FAILED_AUTH", get("PORTCULLIS_RATE_LIMIT_FAILED_AUTH"), 60, 1, 10_000_000),
    tokens: Object.freeze({
      issuer: parseText("PORTCULLIS_JWT_ISSUER", get("PORTCULLIS_JWT_ISSUER") ?? "portcullis"),
      audience: parseText("PORTCULLIS_JWT_AUDIENCE", get("PORTCULLIS_JWT_AUDIENCE") ?? "portcullis"),
      accessTtlMs: 1000 * parseInteger("PORTCULLIS_ACCESS_TOKEN_TTL_SECONDS", get("PORTCULLIS_ACCESS_TOKEN_TTL_SECONDS"), 900, 30, 86_400),
      refreshTtlMs: 1000 * parseInteger("PORTCULLIS_REFRESH_TOKEN_TTL_SECONDS", get("PORTCULLIS_REFRESH_TOKEN_TTL_SECONDS"), 604_800, 60, 90 * 86_400),
      leewayMs: 1000 * parseInteger("PORTCULLIS_TOKEN_LEEWAY_SECONDS", get("PORTCULLIS_TOKEN_LEEWAY_SECONDS"), 30, 0, 300),
      signingKeyRotationMs: 86_400_000 * parseInteger("PORTCULLIS_SIGNING_KEY_ROTATION_DAYS", get("PORTCULLIS_SIGNING_KEY_ROTATION_DAYS"), 30, 1, 3650),
    }),
    apiKeys: Object.freeze(parseApiKeyPolicy(get)),
    passwordHash: Object.freeze({
      memoryKiB: parseInteger("PORTCULLIS_PASSWORD_HASH_MEMORY_KIB", get("PORTCULLIS_PASSWORD_HASH_MEMORY_KIB"), 19_456, 19_456, 4_194_304),
      timeCost: parseInteger("PORTCULLIS_PASSWORD_HASH_TIME_COST", get("PORTCULLIS_PASSWORD_HASH_TIME_COST"), 2, 2, 100),
      parallelism: 1,
    }),
    suppliedKeys: Object.freeze({
      encryptionKey: parseKey("PORTCULLIS_ENCRYPTION_KEY", get("PORTCULLIS_ENCRYPTION_KEY")),
      apiKeyPepper: parseKey("PORTCULLIS_API_KEY_PEPPER", get("PORTCULLIS_API_KEY_PEPPER")),
    }),
    audit: Object.freeze({
      retentionMs: 86_400_000 * parseInteger("PORTCULLIS_AUDIT_RETENTION_DAYS", get("PORTCULLIS_AUDIT_RETENTION_DAYS"), 365, 1, 36_500),
      headSignIntervalMs: 1000 * parseInteger("PORTCULLIS_AUDIT_HEAD_SIGN_INTERVAL_SECONDS", get("PORTCULLIS_AUDIT_HEAD_SIGN_INTERVAL_SECONDS"), 60, 1, 86_400),
      watchHeartbeatMs: 1000 * parseInteger("PORTCULLIS_AUDIT_WATCH_HEARTBEAT_SECONDS", get("PORTCULLIS_AUDIT_WATCH_HEARTBEAT_SECONDS"), 15, 1, 30),
      thresholds: Object.freeze({
        failedLoginsPerUser: parseInteger("PORTCULLIS_AUDIT_FAILED_LOGINS_PER_USER", get("PORTCULLIS_AUDIT_FAILED_LOGINS_PER_USER"), 5, 1, 1_000_000),
        failedLoginsPerIp: parseInteger("PORTCULLIS_AUDIT_FAILED_LOGINS_PER_IP", get("PORTCULLIS_AUDIT_FAILED_LOGINS_PER_IP"), 20, 1, 1_000_000),
        mfaFailures: parseInteger("PORTCULLIS_AUDIT_MFA_FAILURES", get("PORTCULLIS_AUDIT_MFA_FAILURES"), 5, 1, 1_000_000),
        permissionDeniedBurst: parseInteger("PORTCULLIS_AUDIT_PERMISSION_DENIED_BURST", get("PORTCULLIS_AUDIT_PERMISSION_DENIED_BURST"), 20, 1, 1_000_000),
        apiKeyDistinctIps: parseInteger("PORTCULLIS_AUDIT_API_KEY_DISTINCT_IPS", get("PORTCULLIS_AUDIT_API_KEY_DISTINCT_IPS"), 5, 2, 1_000_000),
      }),
      autoResponse: Object.freeze({
        rules: Object.freeze(parseAutoResponse(get("PORTCULLIS_AUDIT_AUTO_RESPONSE"))),
        minSeverity: parseEnum("PORTCULLIS_AUDIT_AUTO_RESPONSE_MIN_SEVERITY", get("PORTCULLIS_AUDIT_AUTO_RESPONSE_MIN_SEVERITY") ?? "critical", ["low", "medium", "high", "critical"] as const),
        lockDurationMs: 60_000 * parseInteger("PORTCULLIS_AUDIT_AUTO_LOCK_MINUTES", get("PORTCULLIS_AUDIT_AUTO_LOCK_MINUTES"), 15, 1, 525_600),
        intervalMs: 1000 * parseInteger("PORTCULLIS_AUDIT_AUTO_RESPONSE_INTERVAL_SECONDS", get("PORTCULLIS_AUDIT_AUTO_RESPONSE_INTERVAL_SECONDS"), 30, 1, 86_400),
      }),
    }),
    audio: Object.freeze({
      engineProcesses: parseInteger("PORTCULLIS_TTS_ENGINE_PROCESSES", get("PORTCULLIS_TTS_ENGINE_PROCESSES"), Math.min(4, Math.max(1, availableParallelism() - 1)), 1, 64),
      maxStreamsPerPrincipal: parseInteger("PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL", get("PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL"), 4, 1, 1000),
    }),
    ai: parseAiConfig(get, cwd, (variable, problem) => new ConfigError(variable, problem)),
    jobs: parseJobsConfig(get, (variable, problem) => new ConfigError(variable, problem)),
  };
  return Object.freeze(config);
}

function parseApiKeyPolicy(get: (name: string) => string | undefined): Config["apiKeys"] {
  const prefix = get("PORTCULLIS_API_KEY_PREFIX") ?? "sk";
  if (!API_KEY_PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError("PORTCULLIS_API_KEY_PREFIX", "must be 1 to 12 lower-case letters or digits, starting with a letter");
  }
  const day = 86_400_000;
  const maxTtlMs = day * parseInteger("PORTCULLIS_API_KEY_MAX_TTL_DAYS", get("PORTCULLIS_API_KEY_MAX_TTL_DAYS"), 365, 1, 3650);
  const defaultTtlMs = day * parseInteger("PORTCULLIS_API_KEY_DEFAULT_TTL_DAYS", get("PORTCULLIS_API_KEY_DEFAULT_TTL_DAYS"), 90, 1, 3650);
  if (defaultTtlMs > maxTtlMs) throw new ConfigError("PORTCULLIS_API_KEY_DEFAULT_TTL_DAYS", "must not exceed PORTCULLIS_API_KEY_MAX_TTL_DAYS");
  return {
    prefix,
    defaultTtlMs,
    maxTtlMs,
    allowNoExpiry: parseBoolean("PORTCULLIS_API_KEY_ALLOW_NO_EXPIRY", get("PORTCULLIS_API_KEY_ALLOW_NO_EXPIRY"), false),
    maxPerUser: parseInteger("PORTCULLIS_API_KEY_MAX_PER_USER", get("PORTCULLIS_API_KEY_MAX_PER_USER"), 100, 1, 100_000),
    selfServiceTier: parseEnum("PORTCULLIS_API_KEY_SELF_SERVICE_TIER", get("PORTCULLIS_API_KEY_SELF_SERVICE_TIER") ?? "standard", ["basic", "standard", "premium"] as const),
  };
}

/** `kind:action` pairs; a kind or action that does not exist, or an action that cannot answer the kind, is refused. */
function parseAutoResponse(raw: string | undefined): Array<{ kind: FindingKind; action: ResponseActionName }> {
  if (raw === undefined || raw.toLowerCase() === "off") return [];
  const name = "PORTCULLIS_AUDIT_AUTO_RESPONSE";
  return raw.split(",").map((entry) => {
    const [kind, action, extra] = entry.trim().split(":");
    const knownKind = FINDING_KINDS.find((k) => k === kind);
    const knownAction = RESPONSE_ACTIONS.find((a) => a === action);
    if (extra !== undefined || !knownKind || !knownAction) {
      throw new ConfigError(name, `each rule must be finding_kind:action with a kind of ${FINDING_KINDS.join(", ")} and an action of ${RESPONSE_ACTIONS.join(", ")}`);
    }
    if (!ACTIONS_FOR_KIND[knownKind].includes(knownAction)) throw new ConfigError(name, `${knownAction} cannot answer ${knownKind}`);
    return { kind: knownKind, action: knownAction };
  });
}

function definedOnly(env: Source): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function readConfigFile(env: Source, cwd: string): Record<string, string> {
  const file = env["PORTCULLIS_CONFIG_FILE"]?.trim();
  if (!file) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(absolute(file, cwd), "utf8"));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : "not a readable JSON file";
    throw new ConfigError("PORTCULLIS_CONFIG_FILE", reason);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError("PORTCULLIS_CONFIG_FILE", "must hold a JSON object of variable names to values");
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!KNOWN.has(name) || name === "PORTCULLIS_CONFIG_FILE") {
      throw new ConfigError("PORTCULLIS_CONFIG_FILE", `unknown variable ${JSON.stringify(name.slice(0, 64))}`);
    }
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new ConfigError(name, "must be a string, number or boolean in the config file");
    }
    out[name] = String(value);
  }
  return out;
}

function absolute(path: string, cwd: string): string {
  return isAbsolute(path) ? path : resolve(cwd, path);
}

function parseInteger(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number from ${min} to ${max}`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be a whole number from ${min} to ${max}`);
  return value;
}

function parseBoolean(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined) return fallback;
  const lower = raw.toLowerCase();
  if (["true", "1", "yes", "on"].includes(lower)) return true;
  if (["false", "0", "no", "off"].includes(lower)) return false;
  throw new ConfigError(name, "must be true or false");
}

function parseEnum<T extends string>(name: string, raw: string, allowed: readonly T[]): T {
  const lower = raw.toLowerCase();
  const found = allowed.find((a) => a === lower);
  if (found === undefined) throw new ConfigError(name, `must be one of ${allowed.join(", ")}`);
  return found;
}

function parseHost(raw: string): string {
  // Hostnames and IPv4/IPv6 literals; brackets are not part of a listen address.
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(raw)) throw new ConfigError("PORTCULLIS_HOST", "must be a host name or IP address");
  return raw;
}

function parseMongoUri(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  // Never echo the value: it may carry a password.
  if (!/^mongodb(\+srv)?:\/\/\S+$/.test(raw)) throw new ConfigError("MONGODB_URI", "must start with mongodb:// or mongodb+srv://");
  return raw;
}

function parseText(name: string, raw: string): string {
  if (!/^[\x21-\x7e]{1,256}$/.test(raw)) throw new ConfigError(name, "must be 1-256 printable ASCII characters without spaces");
  return raw;
}

function parseKey(name: string, raw: string | undefined): Buffer | undefined {
  if (raw === undefined) return undefined;
  // Never echo the value. Both base64 alphabets are accepted.
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(raw) ? Buffer.from(raw, raw.includes("-") || raw.includes("_") ? "base64url" : "base64") : undefined;
  if (bytes?.length !== 32) throw new ConfigError(name, "must be 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)");
  return bytes;
}

function parseDbName(raw: string): string {
  if (!/^[A-Za-z0-9_-]{1,38}$/.test(raw)) throw new ConfigError("PORTCULLIS_DB_NAME", "must be 1-38 letters, digits, _ or -");
  return raw;
}

function parseOrigins(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw.split(",").map((origin) => {
    const trimmed = origin.trim();
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new ConfigError("PORTCULLIS_CORS_ORIGINS", "must be a comma-separated list of origins like https://app.example.com");
    }
    if (!["http:", "https:"].includes(url.protocol) || url.origin !== trimmed) {
      throw new ConfigError("PORTCULLIS_CORS_ORIGINS", "must be a comma-separated list of origins like https://app.example.com");
    }
    return url.origin;
  });
}
