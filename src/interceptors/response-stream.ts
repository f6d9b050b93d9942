import type { StreamResponse, UnaryResponse } from "@connectrpc/connect";

/**
 * Wraps the message iterable of a streaming response so an interceptor can observe how it ends (or
 * translate what it throws). Interceptors that only looked at `next(req)` would see a stream's start but
 * miss every error raised while it runs.
 */
export function wrapResponseStream(res: StreamResponse, hooks: { onEnd?: (error: unknown) => void; mapError?: (error: unknown) => unknown }): StreamResponse {
  const source = res.message;
  async function* wrapped() {
    try {
      yield* source;
    } catch (error) {
      hooks.onEnd?.(error);
      throw hooks.mapError ? hooks.mapError(error) : error;
    }
    hooks.onEnd?.(undefined);
  }
  return { ...res, message: wrapped() };
}

export function isStreamResponse(res: UnaryResponse | StreamResponse): res is StreamResponse {
  return res.stream;
}
