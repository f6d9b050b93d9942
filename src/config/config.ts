import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError } from "./config-error.ts";
import { LOCAL_PROVIDER, type AiConfig } from "./ai-config.ts";
import { COMPUTED_DEFAULTS, CONFIG_VARIABLES, VARIABLES, type ConfigVariable, type DefaultedVariable } from "./config-variables.ts";

export { ConfigError } from "./config-error.ts";
export { CONFIG_VARIABLES, type ConfigVariable } from "./config-variables.ts";

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
  /** How long a slow or silent client may hold a connection (see src/transport/slow-client-guard.ts). */
  readonly clientTimeouts: {
    /** A request's headers must have arrived this long after the connection (or the request) began. */
    readonly headersMs: number;
    /** A request body may go this long without a byte while the server waits for one. */
    readonly bodyMs: number;
    /** A connection with no request in progress is closed after this long. */
    readonly idleMs: number;
  };
  /** Whether gRPC server reflection is served (grpcurl list/describe). */
  readonly reflection: boolean;
  /** The file holding generated signing and encryption keys (owner-only permissions). */
  readonly keyFile: string;
  /** Largest accepted request message, per message. */
  readonly maxMessageBytes: number;
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
  /** API keys: string prefix (checked against the key format by the gateway), lifetime policy and the per-user limit. */
  readonly apiKeys: {
    readonly prefix: string;
    readonly defaultTtlMs: number;
    readonly maxTtlMs: number;
    readonly allowNoExpiry: boolean;
    readonly maxPerUser: number;
    /** The highest tier a caller without `users.manage` may give their own keys. */
    readonly selfServiceTier: "basic" | "standard" | "premium";
  };
  /** argon2id cost; raising it re-hashes each password transparently at its next login. */
  readonly passwordHash: { readonly memoryKiB: number; readonly timeCost: number; readonly parallelism: number };
  /** Deployment-supplied key material (32 bytes each); when absent the key file's generated keys are used. */
  readonly suppliedKeys: { readonly encryptionKey: Buffer | undefined; readonly apiKeyPepper: Buffer | undefined };
  readonly audit: AuditConfig;
  /** Speech: engine processes (they bound the CPU synthesis takes) and open streams per caller. */
  readonly audio: { readonly engineProcesses: number; readonly maxStreamsPerPrincipal: number };
  /** AI providers and query limits (the providers' format in ./ai-config.ts). */
  readonly ai: AiConfig;
  readonly jobs: JobsConfig;
}

/** AI jobs: the durable queue's workers, leases, retries, limits and retention. */
export interface JobsConfig {
  /** Jobs one instance runs at once. */
  readonly concurrency: number;
  /** How long a claim on a running job lasts without renewal; another instance takes the job over after it. */
  readonly leaseMs: number;
  /** Runs of a job in all (the first included) before it fails for good. */
  readonly maxAttempts: number;
  /** The first retry's backoff; each further retry doubles it (with jitter). */
  readonly retryBaseMs: number;
  /** Unfinished (queued or running) jobs one user may have. */
  readonly maxUnfinishedPerUser: number;
  /** Jobs one ExportJobs call may hold. */
  readonly exportMaxJobs: number;
  /** A finished job's events are removed this long after it finished. */
  readonly eventRetentionMs: number;
  /** The slowest poll of an idle instance for queued jobs (its fastest is a few milliseconds). */
  readonly pollMaxMs: number;
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
    /** `finding_kind:action` entries as written; the gateway checks them against what the audit domain knows. */
    readonly rules: readonly string[];
    readonly minSeverity: "low" | "medium" | "high" | "critical";
    readonly lockDurationMs: number;
    readonly intervalMs: number;
  };
}

const KNOWN = new Set(CONFIG_VARIABLES.map((v) => v.name));

type Source = Readonly<Record<string, string | undefined>>;

/**
 * Parses the configuration from the environment and the optional PORTCULLIS_CONFIG_FILE, variable by
 * variable from the table in config-variables.ts. Throws ConfigError naming the first bad variable;
 * callers print its message and exit.
 */
export function loadConfig(env: Source = process.env, cwd: string = process.cwd()): Config {
  const source = { ...readConfigFile(env, cwd), ...definedOnly(env) };
  function read<T>(variable: DefaultedVariable<T>): T;
  function read<T>(variable: ConfigVariable<T>): T | undefined;
  function read<T>(variable: ConfigVariable<T>): T | undefined {
    const set = source[variable.name]?.trim();
    const raw = set === undefined || set === "" ? variable.fallback : set;
    return raw === undefined ? undefined : variable.parse(raw, variable.name, cwd);
  }
  const v = VARIABLES;
  const dataDir = read(v.dataDir);
  const certFile = read(v.tlsCert);
  const keyFile = read(v.tlsKey);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? v.tlsCert.name : v.tlsKey.name, `TLS needs both ${v.tlsCert.name} and ${v.tlsKey.name}`);
  }
  const aiMaxTokens = read(v.aiMaxTokens);
  const aiDefaultMaxTokens = read(v.aiDefaultMaxTokens) ?? COMPUTED_DEFAULTS.aiDefaultMaxTokens(aiMaxTokens);
  if (aiDefaultMaxTokens > aiMaxTokens) throw new ConfigError(v.aiDefaultMaxTokens.name, `must not exceed ${v.aiMaxTokens.name}`);
  const aiProviders = read(v.aiProviders) ?? { providers: Object.freeze([LOCAL_PROVIDER]), defaultProvider: LOCAL_PROVIDER.name };
  const apiKeyMaxTtlMs = read(v.apiKeyMaxTtlMs);
  const apiKeyDefaultTtlMs = read(v.apiKeyDefaultTtlMs);
  if (apiKeyDefaultTtlMs > apiKeyMaxTtlMs) throw new ConfigError(v.apiKeyDefaultTtlMs.name, `must not exceed ${v.apiKeyMaxTtlMs.name}`);
  const config: Config = {
    host: read(v.host),
    port: read(v.port),
    dataDir,
    mongodbUri: read(v.mongodbUri),
    dbName: read(v.dbName),
    toolsDir: read(v.toolsDir),
    tls: certFile && keyFile ? Object.freeze({ certFile, keyFile }) : undefined,
    logLevel: read(v.logLevel),
    shutdownTimeoutMs: read(v.shutdownTimeoutMs),
    clientTimeouts: Object.freeze({ headersMs: read(v.headersTimeoutMs), bodyMs: read(v.bodyTimeoutMs), idleMs: read(v.idleTimeoutMs) }),
    reflection: read(v.reflection),
    keyFile: read(v.keyFile) ?? resolve(dataDir, "keys.json"),
    maxMessageBytes: read(v.maxMessageBytes),
    corsOrigins: read(v.corsOrigins) ?? Object.freeze([]),
    rateLimits: Object.freeze({
      default: read(v.rateLimitDefault),
      credential: read(v.rateLimitCredential),
      expensive: read(v.rateLimitExpensive),
      admin: read(v.rateLimitAdmin),
      infrastructure: read(v.rateLimitInfrastructure),
    }),
    failedAuthenticationsPerMinute: read(v.failedAuthenticationsPerMinute),
    tokens: Object.freeze({
      issuer: read(v.jwtIssuer),
      audience: read(v.jwtAudience),
      accessTtlMs: read(v.accessTtlMs),
      refreshTtlMs: read(v.refreshTtlMs),
      leewayMs: read(v.leewayMs),
      signingKeyRotationMs: read(v.signingKeyRotationMs),
    }),
    apiKeys: Object.freeze({
      prefix: read(v.apiKeyPrefix),
      defaultTtlMs: apiKeyDefaultTtlMs,
      maxTtlMs: apiKeyMaxTtlMs,
      allowNoExpiry: read(v.apiKeyAllowNoExpiry),
      maxPerUser: read(v.apiKeyMaxPerUser),
      selfServiceTier: read(v.apiKeySelfServiceTier),
    }),
    passwordHash: Object.freeze({ memoryKiB: read(v.passwordMemoryKiB), timeCost: read(v.passwordTimeCost), parallelism: 1 }),
    suppliedKeys: Object.freeze({ encryptionKey: read(v.encryptionKey), apiKeyPepper: read(v.apiKeyPepper) }),
    audit: Object.freeze({
      retentionMs: read(v.auditRetentionMs),
      headSignIntervalMs: read(v.auditHeadSignIntervalMs),
      watchHeartbeatMs: read(v.auditWatchHeartbeatMs),
      thresholds: Object.freeze({
        failedLoginsPerUser: read(v.auditFailedLoginsPerUser),
        failedLoginsPerIp: read(v.auditFailedLoginsPerIp),
        mfaFailures: read(v.auditMfaFailures),
        permissionDeniedBurst: read(v.auditPermissionDeniedBurst),
        apiKeyDistinctIps: read(v.auditApiKeyDistinctIps),
      }),
      autoResponse: Object.freeze({
        rules: read(v.auditAutoResponse) ?? Object.freeze([]),
        minSeverity: read(v.auditAutoResponseMinSeverity),
        lockDurationMs: read(v.auditAutoLockMs),
        intervalMs: read(v.auditAutoResponseIntervalMs),
      }),
    }),
    audio: Object.freeze({
      engineProcesses: read(v.ttsEngineProcesses) ?? COMPUTED_DEFAULTS.ttsEngineProcesses(),
      maxStreamsPerPrincipal: read(v.audioMaxStreamsPerPrincipal),
    }),
    ai: Object.freeze({
      ...aiProviders,
      defaultMaxTokens: aiDefaultMaxTokens,
      maxTokens: aiMaxTokens,
      maxPromptChars: read(v.aiMaxPromptChars),
      maxMessages: read(v.aiMaxMessages),
      probeIntervalMs: read(v.aiProbeIntervalMs),
      credentialKeyVersion: read(v.credentialKeyVersion),
    }),
    jobs: Object.freeze({
      concurrency: read(v.jobConcurrency),
      leaseMs: read(v.jobLeaseMs),
      maxAttempts: read(v.jobMaxAttempts),
      retryBaseMs: read(v.jobRetryBaseMs),
      maxUnfinishedPerUser: read(v.jobMaxUnfinishedPerUser),
      exportMaxJobs: read(v.jobExportMaxJobs),
      eventRetentionMs: read(v.jobEventRetentionMs),
      pollMaxMs: read(v.jobPollMaxMs),
    }),
  };
  return Object.freeze(config);
}

function definedOnly(env: Source): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function readConfigFile(env: Source, cwd: string): Record<string, string> {
  const name = VARIABLES.configFile.name;
  const raw = env[name]?.trim();
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(VARIABLES.configFile.parse(raw, name, cwd), "utf8"));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : "not a readable JSON file";
    throw new ConfigError(name, reason);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(name, "must hold a JSON object of variable names to values");
  }
  const out: Record<string, string> = {};
  for (const [variable, value] of Object.entries(parsed)) {
    if (!KNOWN.has(variable) || variable === name) {
      throw new ConfigError(name, `unknown variable ${JSON.stringify(variable.slice(0, 64))}`);
    }
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new ConfigError(variable, "must be a string, number or boolean in the config file");
    }
    out[variable] = String(value);
  }
  return out;
}
