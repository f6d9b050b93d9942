import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";

/** One configured AI provider (an entry of PORTCULLIS_AI_PROVIDERS). */
export interface AiProviderConfig {
  /** As used in QueryRequest.provider and by stored credentials: 1-32 of a-z 0-9 _ -. */
  readonly name: string;
  readonly kind: "openai" | "anthropic" | "local";
  /** openai: up to and including `/v1`; anthropic: the host, `/v1/messages` is appended. Empty for local. */
  readonly baseUrl: string;
  readonly defaultModel: string;
  /** The configured models, the default model first among them. */
  readonly models: readonly string[];
  /** The name of the stored credential (PutProviderCredential) the provider uses; undefined for none. */
  readonly credential: string | undefined;
  /** The longest wait for the first byte of an answer, and between two chunks of a stream. */
  readonly timeoutMs: number;
}

/** AI queries: the providers and the server's limits on what a query may ask for. */
export interface AiConfig {
  readonly providers: readonly AiProviderConfig[];
  /** The provider used when a query names none. */
  readonly defaultProvider: string;
  /** max_tokens when a query sets none. */
  readonly defaultMaxTokens: number;
  /** The cap on max_tokens: larger requests are lowered to it. */
  readonly maxTokens: number;
  /** Characters of system prompt, prompt and messages together. */
  readonly maxPromptChars: number;
  readonly maxMessages: number;
  readonly probeIntervalMs: number;
  /** The key-encryption-key version new and rotated provider credentials are wrapped under. */
  readonly credentialKeyVersion: number;
}

/** The configuration variables of this module, for the README's table and the config file's allow-list. */
export const AI_CONFIG_VARIABLES = [
  { name: "PORTCULLIS_AI_PROVIDERS", default: "(local only)", description: "The AI providers: a JSON array, or `@file.json`, of `{name, kind: openai|anthropic|local, baseUrl, defaultModel, models, credential, timeoutMs, default}`. Unset: only the built-in `local` responder." },
  { name: "PORTCULLIS_AI_DEFAULT_MAX_TOKENS", default: "1024", description: "max_tokens of a query that sets none." },
  { name: "PORTCULLIS_AI_MAX_TOKENS", default: "4096", description: "The cap on a query's max_tokens (larger values are lowered to it)." },
  { name: "PORTCULLIS_AI_MAX_PROMPT_CHARS", default: "100000", description: "Most characters of system prompt, prompt and messages in one query (INVALID_ARGUMENT beyond)." },
  { name: "PORTCULLIS_AI_MAX_MESSAGES", default: "100", description: "Most messages in one query's conversation (INVALID_ARGUMENT beyond)." },
  { name: "PORTCULLIS_AI_PROBE_INTERVAL_SECONDS", default: "30", description: "How often each provider's health is probed (a model listing, never a completion)." },
  { name: "PORTCULLIS_CREDENTIAL_KEY_VERSION", default: "1", description: "Version of the key-encryption key (derived from PORTCULLIS_ENCRYPTION_KEY) that wraps provider credentials; raise it, then call RotateCredentialEncryption." },
] as const;

/** The built-in provider: answers offline, needs no key and downloads nothing. */
export const LOCAL_PROVIDER: AiProviderConfig = Object.freeze({ name: "local", kind: "local", baseUrl: "", defaultModel: "local-echo", models: Object.freeze(["local-echo"]), credential: undefined, timeoutMs: 60_000 });

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const MODEL = /^[\x21-\x7e]{1,200}$/;
const KNOWN_FIELDS = new Set(["name", "kind", "baseUrl", "defaultModel", "models", "credential", "timeoutMs", "default"]);
const DEFAULT_BASE_URL = { openai: "https://api.openai.com/v1", anthropic: "https://api.anthropic.com", local: "" } as const;

type Problem = (variable: string, problem: string) => Error;

/**
 * Parses the AI variables. `get` returns a trimmed value or undefined; `fail` makes the configuration
 * error the caller reports (one line naming the variable; values are never echoed, they may hold URLs
 * with credentials).
 */
export function parseAiConfig(get: (name: string) => string | undefined, cwd: string, fail: Problem): AiConfig {
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(value >= min && value <= max)) throw fail(name, `must be a whole number from ${min} to ${max}`);
    return value;
  };
  const { providers, defaultProvider } = parseProviders(get("PORTCULLIS_AI_PROVIDERS"), cwd, fail);
  const maxTokens = integer("PORTCULLIS_AI_MAX_TOKENS", 4096, 1, 1_000_000);
  const defaultMaxTokens = integer("PORTCULLIS_AI_DEFAULT_MAX_TOKENS", Math.min(1024, maxTokens), 1, 1_000_000);
  if (defaultMaxTokens > maxTokens) throw fail("PORTCULLIS_AI_DEFAULT_MAX_TOKENS", "must not exceed PORTCULLIS_AI_MAX_TOKENS");
  return Object.freeze({
    providers,
    defaultProvider,
    defaultMaxTokens,
    maxTokens,
    maxPromptChars: integer("PORTCULLIS_AI_MAX_PROMPT_CHARS", 100_000, 1, 50_000_000),
    maxMessages: integer("PORTCULLIS_AI_MAX_MESSAGES", 100, 1, 10_000),
    probeIntervalMs: 1000 * integer("PORTCULLIS_AI_PROBE_INTERVAL_SECONDS", 30, 1, 86_400),
    credentialKeyVersion: integer("PORTCULLIS_CREDENTIAL_KEY_VERSION", 1, 1, 1_000_000),
  });
}

function parseProviders(raw: string | undefined, cwd: string, fail: Problem): { providers: readonly AiProviderConfig[]; defaultProvider: string } {
  const variable = "PORTCULLIS_AI_PROVIDERS";
  if (raw === undefined) return { providers: Object.freeze([LOCAL_PROVIDER]), defaultProvider: LOCAL_PROVIDER.name };
  let text = raw;
  if (raw.startsWith("@")) {
    const file = raw.slice(1);
    try {
      text = readFileSync(isAbsolute(file) ? file : resolve(cwd, file), "utf8");
    } catch {
      throw fail(variable, "the file after @ cannot be read");
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw fail(variable, "must be a JSON array of providers (or @file.json)");
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.length > 64) throw fail(variable, "must be a JSON array of 1 to 64 providers");
  const providers: AiProviderConfig[] = [];
  let defaultProvider: string | undefined;
  parsed.forEach((entry: unknown, index) => {
    const at = (problem: string) => fail(variable, `provider ${index + 1}: ${problem}`);
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw at("must be an object");
    const e = entry as Record<string, unknown>;
    const unknown = Object.keys(e).find((k) => !KNOWN_FIELDS.has(k));
    if (unknown !== undefined) throw at(`unknown field ${JSON.stringify(unknown.slice(0, 32))}`);
    if (typeof e["name"] !== "string" || !NAME.test(e["name"])) throw at("name must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)");
    const name = e["name"];
    if (providers.some((p) => p.name === name)) throw at(`name ${name} is used twice`);
    const kind = e["kind"];
    if (kind !== "openai" && kind !== "anthropic" && kind !== "local") throw at("kind must be openai, anthropic or local");
    const baseUrl = kind === "local" ? "" : parseBaseUrl(e["baseUrl"] ?? DEFAULT_BASE_URL[kind], at);
    if (kind === "local" && e["baseUrl"] !== undefined) throw at("a local provider has no baseUrl");
    const models = e["models"] ?? [];
    if (!Array.isArray(models) || models.length > 500 || !models.every((m) => typeof m === "string" && MODEL.test(m))) throw at("models must be an array of model ids (printable, no spaces)");
    const defaultModel = e["defaultModel"] ?? (kind === "local" ? LOCAL_PROVIDER.defaultModel : models[0]);
    if (typeof defaultModel !== "string" || !MODEL.test(defaultModel)) throw at("defaultModel is required (or a first entry in models)");
    if (kind === "local" && defaultModel !== LOCAL_PROVIDER.defaultModel) throw at(`the local provider's only model is ${LOCAL_PROVIDER.defaultModel}`);
    const credential = e["credential"];
    if (credential !== undefined && (typeof credential !== "string" || !NAME.test(credential))) throw at("credential must name a stored credential: 1-32 of a-z 0-9 _ -");
    if (kind === "local" && credential !== undefined) throw at("a local provider needs no credential");
    const timeoutMs = e["timeoutMs"] ?? 60_000;
    if (typeof timeoutMs !== "number" || !Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000) throw at("timeoutMs must be a whole number from 100 to 600000");
    if (e["default"] !== undefined && typeof e["default"] !== "boolean") throw at("default must be true or false");
    if (e["default"] === true) {
      if (defaultProvider !== undefined) throw at("only one provider may be the default");
      defaultProvider = name;
    }
    providers.push(Object.freeze({ name, kind, baseUrl, defaultModel, models: Object.freeze([defaultModel, ...(models as string[]).filter((m) => m !== defaultModel)]), credential, timeoutMs }));
  });
  return { providers: Object.freeze(providers), defaultProvider: defaultProvider ?? providers[0]!.name };
}

function parseBaseUrl(raw: unknown, at: (problem: string) => Error): string {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    throw at("baseUrl must be an http or https URL");
  }
  // A credential in the URL would travel to logs and errors; credentials belong in the vault.
  if (!["http:", "https:"].includes(url.protocol) || url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw at("baseUrl must be an http or https URL without user, password, query or fragment");
  }
  return url.href.replace(/\/+$/, "");
}
