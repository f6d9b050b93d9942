import { DomainError } from "../errors.ts";
import type { ChatMessage } from "./chat-provider.ts";

/** A query as the caller sent it (Query, QueryStream, and later SubmitJob): exactly one of prompt and messages. */
export interface QueryInput {
  /** Empty for the default provider. */
  readonly provider: string;
  /** Empty for the provider's default model. */
  readonly model: string;
  readonly prompt: string;
  readonly messages: readonly ChatMessage[];
  readonly systemPrompt: string;
  readonly maxTokens?: number | undefined;
  readonly temperature?: number | undefined;
}

/** The server's limits on a query (PORTCULLIS_AI_*). */
export interface QueryLimits {
  readonly defaultMaxTokens: number;
  readonly maxTokens: number;
  readonly maxPromptChars: number;
  readonly maxMessages: number;
}

export interface ValidatedQuery {
  readonly messages: readonly ChatMessage[];
  readonly systemPrompt: string;
  readonly maxTokens: number;
  readonly temperature: number | undefined;
  /** Characters of system prompt and messages, for token estimates. */
  readonly promptChars: number;
}

/**
 * Checks a query against the contract and the server's limits: INVALID_ARGUMENT for neither or both of
 * prompt and messages, a conversation that does not end with a user message, an empty message, too many
 * messages or characters, a max_tokens that is not positive, or a temperature outside 0.0 to 2.0.
 * A max_tokens above the server's cap is lowered to it, as the contract says.
 */
export function validateQuery(input: QueryInput, limits: QueryLimits): ValidatedQuery {
  const hasPrompt = input.prompt !== "";
  const hasMessages = input.messages.length > 0;
  if (hasPrompt === hasMessages) throw new DomainError("invalid_argument", "set exactly one of prompt and messages");
  if (input.messages.length > limits.maxMessages) throw new DomainError("invalid_argument", `a conversation may have at most ${limits.maxMessages} messages`);
  const messages: readonly ChatMessage[] = hasPrompt ? [{ role: "user", content: input.prompt }] : input.messages;
  messages.forEach((m, i) => {
    if (m.content.trim() === "") throw new DomainError("invalid_argument", `message ${i + 1} is empty`);
  });
  if (messages.at(-1)!.role !== "user") throw new DomainError("invalid_argument", "the conversation must end with a user message");
  const promptChars = input.systemPrompt.length + messages.reduce((n, m) => n + m.content.length, 0);
  if (promptChars > limits.maxPromptChars) throw new DomainError("invalid_argument", `the prompt, messages and system prompt may hold at most ${limits.maxPromptChars} characters`);
  let maxTokens = limits.defaultMaxTokens;
  if (input.maxTokens !== undefined) {
    if (!Number.isInteger(input.maxTokens) || input.maxTokens < 1) throw new DomainError("invalid_argument", "max_tokens must be positive");
    maxTokens = Math.min(input.maxTokens, limits.maxTokens);
  }
  const t = input.temperature;
  if (t !== undefined && !(Number.isFinite(t) && t >= 0 && t <= 2)) throw new DomainError("invalid_argument", "temperature must be from 0.0 to 2.0");
  return { messages, systemPrompt: input.systemPrompt, maxTokens, temperature: t, promptChars };
}

/** A rough token count for text a provider did not count for us (about 4 characters a token). */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}
