import { Agent, errors, request, type Dispatcher } from "undici";
import { ProviderError } from "../domain/ai/chat-provider.ts";

/**
 * One provider's HTTP connection pool (undici keeps connections alive and reuses them across calls, so a
 * query pays no TCP or TLS handshake once the pool is warm) and the request helper every adapter uses:
 * it applies the provider's timeout to the response headers and to every gap between body chunks, ties
 * the request to the caller's AbortSignal, and turns a non-2xx answer into a ProviderError without ever
 * reading the provider's text into it (the body may echo our credential; it is drained and dropped).
 */
export interface HttpUpstream {
  send(input: { method: "GET" | "POST"; path: string; headers: Record<string, string>; body?: string; signal: AbortSignal }): Promise<Dispatcher.ResponseData>;
  close(): Promise<void>;
}

export function createHttpUpstream(options: { baseUrl: string; timeoutMs: number }): HttpUpstream {
  const base = new URL(options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
  const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 300_000, connections: 256, connect: { timeout: Math.min(options.timeoutMs, 10_000) } });
  return {
    async send(input) {
      const url = new URL(input.path.replace(/^\//, ""), base);
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, {
          method: input.method,
          headers: input.headers,
          ...(input.body !== undefined ? { body: input.body } : {}),
          signal: input.signal,
          dispatcher: agent,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        });
      } catch (error) {
        throw transportFailure(error, input.signal);
      }
      if (response.statusCode >= 200 && response.statusCode < 300) return response;
      // Read and drop the body so the connection can be reused; its text never leaves this function.
      await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      throw statusFailure(response.statusCode, response.headers);
    },
    close: () => agent.close(),
  };
}

/**
 * Wraps a response body so that a transport failure while reading it (a reset, a chunk gap past the
 * timeout) surfaces as a ProviderError, and the abort reason as itself. Leaving the loop early does not
 * destroy the body: an adapter that has read the whole answer calls {@link finishBody}, so the
 * connection goes back to the pool instead of being torn down after every query.
 */
export async function* readBody(body: Dispatcher.ResponseData["body"], signal: AbortSignal): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    throw transportFailure(error, signal);
  }
}

/**
 * Ends an answer's body: after a complete answer, the few bytes that may follow it are drained (at most
 * 64 KiB, else the connection is closed) so the connection can be reused; after anything else (a failure,
 * a cancelled call) the body is destroyed at once, which closes the connection and so tells the provider.
 */
export function finishBody(body: Dispatcher.ResponseData["body"], complete: boolean): void {
  if (body.destroyed) return;
  if (complete) body.dump({ limit: 64 * 1024 }).catch(() => undefined);
  else body.destroy();
}

/** A failure before or while reading an answer, as a ProviderError (or the caller's abort reason). */
export function transportFailure(error: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason ?? error;
  if (error instanceof ProviderError) return error;
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError || error instanceof errors.ConnectTimeoutError) {
    return new ProviderError("timeout", "no answer within the provider's timeout", { cause: error });
  }
  return new ProviderError("connection", "connection failed", { cause: error });
}

function statusFailure(status: number, headers: Record<string, string | string[] | undefined>): ProviderError {
  if (status >= 300 && status < 400) return new ProviderError("redirected", `HTTP ${status}`, { status });
  if (status === 401 || status === 403) return new ProviderError("unauthorized", `HTTP ${status}`, { status });
  if (status === 429) {
    const retryAfterMs = retryAfter(headers);
    return new ProviderError("rate_limited", "HTTP 429", { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  }
  if (status === 404) return new ProviderError("model_not_found", "HTTP 404", { status });
  if (status === 408) return new ProviderError("timeout", "HTTP 408", { status });
  if (status >= 500) return new ProviderError("server_error", `HTTP ${status}`, { status });
  return new ProviderError("bad_request", `HTTP ${status}`, { status });
}

/** `retry-after-ms` (OpenAI), else `retry-after` in seconds or as an HTTP date; undefined when absent or unreadable. */
function retryAfter(headers: Record<string, string | string[] | undefined>): number | undefined {
  const first = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const ms = first("retry-after-ms");
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const value = first("retry-after")?.trim();
  if (value === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
