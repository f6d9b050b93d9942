import { modelById, type ProbeResult } from "../domain/ai/chat-provider.ts";
import type { HttpUpstream } from "./http-upstream.ts";
import { ProviderError } from "../domain/ai/chat-provider.ts";

// A provider that takes longer than this to list its models is working, but slowly.
const SLOW_PROBE_MS = 2_000;

/**
 * The cheap health probe of both HTTP kinds: list the models (`GET models`, no tokens spent). A 2xx is
 * healthy (degraded when slow) and yields the reported model ids; a 404 means the server works but does
 * not list models (some OpenAI-compatible servers); anything else is unhealthy, described in our words.
 */
export async function probeModelListing(upstream: HttpUpstream, input: { path: string; headers: Record<string, string>; signal: AbortSignal }): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const response = await upstream.send({ method: "GET", path: input.path, headers: input.headers, signal: input.signal });
    const text = await response.body.text();
    const latencyMs = elapsed();
    const ids = modelIds(text);
    return {
      health: latencyMs > SLOW_PROBE_MS ? "degraded" : "healthy",
      detail: latencyMs > SLOW_PROBE_MS ? `listing models took ${latencyMs} ms` : "",
      latencyMs,
      ...(ids ? { models: ids.map(modelById) } : {}),
    };
  } catch (error) {
    const latencyMs = elapsed();
    if (error instanceof ProviderError) {
      if (error.kind === "model_not_found") return { health: "healthy", detail: "", latencyMs };
      const detail = {
        unauthorized: "the provider refused the stored credential",
        rate_limited: "the provider is rate limiting us",
        server_error: `the provider failed (HTTP ${error.status ?? "?"})`,
        connection: "the provider cannot be reached",
        timeout: "the provider did not answer in time",
        bad_request: `the provider refused the probe (HTTP ${error.status ?? "?"})`,
        model_not_found: "",
        malformed: "the provider answered in an unknown format",
        redirected: "the provider answered with a redirect (not followed): check its baseUrl",
      }[error.kind];
      return { health: error.kind === "rate_limited" ? "degraded" : "unhealthy", detail, latencyMs };
    }
    return { health: "unhealthy", detail: "the probe failed", latencyMs };
  }
}

/** `{"data": [{"id": ...}]}` (OpenAI and Anthropic alike); undefined when the body is not that shape. */
function modelIds(text: string): string[] | undefined {
  try {
    const parsed = JSON.parse(text) as { data?: unknown };
    if (!Array.isArray(parsed.data)) return undefined;
    return parsed.data
      .map((m: unknown) => (m !== null && typeof m === "object" ? (m as { id?: unknown }).id : undefined))
      .filter((id): id is string => typeof id === "string" && /^[\x21-\x7e]{1,200}$/.test(id))
      .slice(0, 1000);
  } catch {
    return undefined;
  }
}
