import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { ConfigError } from "./config-error.ts";
import type { Parser } from "./parsers.ts";

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

/** The built-in provider: answers offline, needs no key and downloads nothing. */
export const LOCAL_PROVIDER: AiProviderConfig = Object.freeze({
  name: "local",
  kind: "local",
  baseUrl: "",
  defaultModel: "local-echo",
  models: Object.freeze(["local-echo"]),
  credential: undefined,
  timeoutMs: 60_000,
});

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const MODEL = /^[\x21-\x7e]{1,200}$/;
const KNOWN_FIELDS = new Set(["name", "kind", "baseUrl", "defaultModel", "models", "credential", "timeoutMs", "default"]);
const DEFAULT_BASE_URL = { openai: "https://api.openai.com/v1", anthropic: "https://api.anthropic.com", local: "" } as const;

/**
 * PORTCULLIS_AI_PROVIDERS: a JSON array (or `@file.json`) of providers; unset, the built-in local
 * responder only. Values are never echoed in errors: they may hold URLs with credentials.
 */
export const aiProviders: Parser<{ providers: readonly AiProviderConfig[]; defaultProvider: string }> = (raw, name, cwd) =>
  parseProviders(raw, cwd, (variable, problem) => new ConfigError(name ?? variable, problem));

type Problem = (variable: string, problem: string) => Error;

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
