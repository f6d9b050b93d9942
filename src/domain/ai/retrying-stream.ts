import type { ChatCallOptions, ChatChunk, ChatProvider, ChatRequest } from "./chat-provider.ts";
import { ProviderError } from "./chat-provider.ts";

/** How often and how patiently a failed provider call is tried again. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** The backoff cap before jitter: base × 2^(attempt-1), at most `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A `retry-after` longer than this is not waited for: the call fails at once with it. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 150, maxDelayMs: 2_000, maxRetryAfterMs: 10_000 };

/**
 * Streams a completion, trying again on retryable failures (429, 5xx, connection refused or reset)
 * only while nothing has been yielded: once the first chunk has gone to our caller, an answer is under
 * way and repeating the call would send the client a second, different beginning. Backoff is "full
 * jitter" (a random wait up to the exponential cap) so that many gateways retrying one overloaded
 * provider do not retry in lockstep; a provider's `retry-after` is a floor for that wait.
 *
 * `onRetry` hears each retried failure (for logging; it carries no provider text).
 */
export async function* streamWithRetries(
  provider: ChatProvider,
  request: ChatRequest,
  options: ChatCallOptions,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (error: ProviderError, attempt: number) => void,
): AsyncGenerator<ChatChunk> {
  for (let attempt = 1; ; attempt++) {
    let yielded = false;
    try {
      for await (const chunk of provider.stream(request, options)) {
        yielded = true;
        yield chunk;
      }
      return;
    } catch (error) {
      if (yielded || options.signal.aborted || !(error instanceof ProviderError) || !error.retryable || attempt >= policy.maxAttempts) throw error;
      if (error.retryAfterMs !== undefined && error.retryAfterMs > policy.maxRetryAfterMs) throw error;
      onRetry?.(error, attempt);
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(Math.max(error.retryAfterMs ?? 0, Math.random() * cap), options.signal);
    }
  }
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
