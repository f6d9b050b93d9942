import type { AiProviderConfig } from "../config/ai-config.ts";
import { modelById, ProviderError, type ChatChunk, type ChatProvider, type FinishReason } from "../domain/ai/chat-provider.ts";
import { parseEventObject, tokenCount } from "./event-data.ts";
import { createHttpUpstream, finishBody, readBody, transportFailure } from "./http-upstream.ts";
import { probeModelListing } from "./model-listing-probe.ts";
import { readServerSentEventBatches } from "./sse-reader.ts";

const API_VERSION = "2023-06-01";
const STOP: Readonly<Record<string, FinishReason>> = { end_turn: "stop", stop_sequence: "stop", tool_use: "stop", pause_turn: "stop", max_tokens: "length", refusal: "content_filter" };

/**
 * Anthropic's Messages API with its event stream: `message_start` carries the input tokens,
 * `content_block_delta` the text, `message_delta` the stop reason and output tokens, `message_stop` the
 * end. An `error` event mid-stream is a provider failure. Anthropic's temperature range is 0 to 1: our
 * contract's 0 to 2 is passed through below 1 and sent as 1 above it.
 */
export function createAnthropicProvider(config: AiProviderConfig): ChatProvider {
  const upstream = createHttpUpstream({ baseUrl: config.baseUrl, timeoutMs: config.timeoutMs });
  const headers = (credential: string | undefined, accept: string): Record<string, string> => ({
    "content-type": "application/json",
    accept,
    "anthropic-version": API_VERSION,
    ...(credential !== undefined ? { "x-api-key": credential } : {}),
  });
  return {
    name: config.name,
    kind: "anthropic",
    defaultModel: config.defaultModel,
    models: config.models.map(modelById),
    credentialName: config.credential,
    description: `Anthropic Messages API at ${config.baseUrl}`,

    async *stream(request, { signal, credential }): AsyncGenerator<ChatChunk> {
      const body = JSON.stringify({
        model: request.model,
        max_tokens: request.maxTokens,
        messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
        ...(request.systemPrompt !== "" ? { system: request.systemPrompt } : {}),
        ...(request.temperature !== undefined ? { temperature: Math.min(1, request.temperature) } : {}),
        stream: true,
      });
      const response = await upstream.send({ method: "POST", path: "v1/messages", headers: headers(credential, "text/event-stream"), body, signal });
      let inputTokens = 0;
      let outputTokens = 0;
      let sawUsage = false;
      let finish: FinishReason | undefined;
      let complete = false;
      try {
        // Deltas that arrived in one read go on as one (see the OpenAI adapter).
        for await (const batch of readServerSentEventBatches(readBody(response.body, signal))) {
          let text = "";
          for (const { event, data } of batch) {
            if (event === "ping") continue;
            const payload = parseEventObject(data);
            const type = event === "message" ? payload["type"] : event;
            if (type === "error") {
              if (text !== "") yield { type: "delta", text };
              const kind = (payload["error"] as { type?: unknown } | undefined)?.type;
              throw new ProviderError(kind === "rate_limit_error" ? "rate_limited" : "server_error", "error event in the stream");
            }
            if (type === "message_start") {
              const usage = (payload["message"] as { usage?: Record<string, unknown> } | undefined)?.usage;
              if (usage) {
                sawUsage = true;
                inputTokens = tokenCount(usage["input_tokens"]) + tokenCount(usage["cache_creation_input_tokens"]) + tokenCount(usage["cache_read_input_tokens"]);
                outputTokens = tokenCount(usage["output_tokens"]);
              }
            } else if (type === "content_block_delta") {
              const delta = payload["delta"] as { type?: unknown; text?: unknown } | undefined;
              if (delta?.type === "text_delta" && typeof delta.text === "string") text += delta.text;
            } else if (type === "message_delta") {
              const stop = (payload["delta"] as { stop_reason?: unknown } | undefined)?.stop_reason;
              if (typeof stop === "string") finish = STOP[stop] ?? "stop";
              const usage = payload["usage"] as Record<string, unknown> | undefined;
              if (usage && usage["output_tokens"] !== undefined) {
                sawUsage = true;
                outputTokens = tokenCount(usage["output_tokens"]);
              }
            } else if (type === "message_stop") {
              if (text !== "") yield { type: "delta", text };
              complete = true;
              yield { type: "finish", reason: finish ?? "stop", usage: sawUsage ? { inputTokens, outputTokens } : undefined };
              return;
            }
          }
          if (text !== "") yield { type: "delta", text };
        }
        throw new ProviderError("connection", "the event stream ended before the answer did");
      } catch (error) {
        throw transportFailure(error, signal);
      } finally {
        finishBody(response.body, complete);
      }
    },

    probe: ({ signal, credential }) => probeModelListing(upstream, { path: "v1/models", headers: headers(credential, "application/json"), signal }),
    close: () => upstream.close(),
  };
}
