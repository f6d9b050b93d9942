/**
 * The contract between the AI domain and whatever answers a chat completion (an HTTP provider adapter,
 * the built-in local responder, a test double). Query, QueryStream, jobs and the audio Converse RPC all
 * call a provider through this one interface, so retries, budgets and accounting are written once.
 */

/** Who wrote a conversation turn. The system prompt travels separately. */
export type ChatRole = "user" | "assistant";

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

/** A validated request for one completion: the model is resolved and max_tokens already capped. */
export interface ChatRequest {
  readonly model: string;
  /** Oldest first, ending with a user message. */
  readonly messages: readonly ChatMessage[];
  /** Empty for none. */
  readonly systemPrompt: string;
  readonly maxTokens: number;
  /** 0.0 to 2.0; undefined for the provider's default. */
  readonly temperature?: number | undefined;
}

export type FinishReason = "stop" | "length" | "content_filter" | "cancelled" | "error";

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/**
 * One piece of a streamed completion. A provider yields text deltas as they arrive, and at most one
 * `finish` at the end, carrying the usage when the provider reported it.
 */
export type ChatChunk = { readonly type: "delta"; readonly text: string } | { readonly type: "finish"; readonly reason: FinishReason; readonly usage?: TokenUsage | undefined };

/** What a model can do, as ListModels reports it. */
export type ModelCapability = "chat" | "streaming" | "system_prompt" | "vision" | "tool_use" | "json_output";

export interface ModelInfo {
  readonly id: string;
  readonly displayName: string;
  readonly capabilities: readonly ModelCapability[];
  /** 0 when unknown. */
  readonly contextWindowTokens: number;
  /** 0 when unknown. */
  readonly maxOutputTokens: number;
}

/** The outcome of a cheap health probe (never a completion). */
export interface ProbeResult {
  readonly health: "healthy" | "degraded" | "unhealthy";
  /** Why it is not healthy (never a provider's body). */
  readonly detail: string;
  readonly latencyMs: number;
  /** Models the provider reported while probing (openai-kind `/models`), if any. */
  readonly models?: readonly ModelInfo[] | undefined;
}

/** Per-call options: the credential is read at call time, the signal ends the upstream request at once. */
export interface ChatCallOptions {
  readonly signal: AbortSignal;
  /** The provider's secret, or undefined for providers that need none. */
  readonly credential: string | undefined;
}

/**
 * One configured provider. `stream` starts the upstream request when first iterated and must stop it
 * (closing the connection or stream) as soon as `signal` aborts or the consumer stops iterating.
 * Failures are thrown as {@link ProviderError}; nothing the provider sent back is put into them.
 */
export interface ChatProvider {
  readonly name: string;
  readonly kind: "openai" | "anthropic" | "local";
  readonly defaultModel: string;
  /** The configured models (the default model among them). */
  readonly models: readonly ModelInfo[];
  /** The name of the stored credential it needs; undefined when it needs none. */
  readonly credentialName: string | undefined;
  /** A human sentence about what this provider is, for GetStatus (e.g. the local responder's honesty). */
  readonly description: string;
  stream(request: ChatRequest, options: ChatCallOptions): AsyncIterable<ChatChunk>;
  probe(options: ChatCallOptions): Promise<ProbeResult>;
  /** Releases connections. */
  close(): Promise<void>;
}

/**
 * Why a provider call failed, in classes the domain maps to status codes:
 * - `unauthorized`: the provider refused our credential (401/403);
 * - `rate_limited`: 429 (retryable, honouring `retryAfterMs`);
 * - `server_error`: 5xx (retryable);
 * - `connection`: refused, reset, DNS (retryable);
 * - `timeout`: no first byte, or no next chunk, within the provider's timeout;
 * - `bad_request`: the provider refused the request itself (400, 413, 422);
 * - `model_not_found`: the provider does not know the model (404);
 * - `malformed`: the answer was not the wire format we speak;
 * - `redirected`: a 3xx, which is never followed (the credential goes to the configured base URL only).
 */
export type ProviderErrorKind = "unauthorized" | "rate_limited" | "server_error" | "connection" | "timeout" | "bad_request" | "model_not_found" | "malformed" | "redirected";

const RETRYABLE: ReadonlySet<ProviderErrorKind> = new Set(["rate_limited", "server_error", "connection"]);

export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  /** The provider's HTTP status, when there was one. */
  readonly status: number | undefined;
  /** From a `retry-after` header, when the provider sent one. */
  readonly retryAfterMs: number | undefined;

  /** `message` is ours (e.g. "HTTP 503"), never text the provider sent. */
  constructor(kind: ProviderErrorKind, message: string, options: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProviderError";
    this.kind = kind;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.kind);
  }
}

/** The capabilities every chat model behind our providers has. */
export const CHAT_CAPABILITIES: readonly ModelCapability[] = ["chat", "streaming", "system_prompt"];

/** A model known only by its id. */
export function modelById(id: string): ModelInfo {
  return { id, displayName: id, capabilities: CHAT_CAPABILITIES, contextWindowTokens: 0, maxOutputTokens: 0 };
}
