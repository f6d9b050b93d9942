import type { AiProviderConfig } from "../config/ai-config.ts";
import { modelById, ProviderError, type ChatChunk, type ChatProvider, type FinishReason, type TokenUsage } from "../domain/ai/chat-provider.ts";
import { parseEventObject, tokenCount } from "./event-data.ts";
import { createHttpUpstream, finishBody, readBody, transportFailure } from "./http-upstream.ts";
import { probeModelListing } from "./model-listing-probe.ts";
import { readServerSentEventBatches } from "./sse-reader.ts";

const FINISH: Readonly<Record<string, FinishReason>> = { stop: "stop", length: "length", content_filter: "content_filter", tool_calls: "stop", function_call: "stop" };

interface CompletionChunk {
  choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: unknown;
}

/**
 * The OpenAI chat-completions wire format (also spoken by vLLM, Ollama, LM Studio, llama.cpp's server,
 * Groq and most gateways). Every call streams (`stream: true` with `stream_options.include_usage`, so the
 * usage arrives in the last chunk before `[DONE]`); Query simply collects the stream.
 */
export function createOpenAiProvider(config: AiProviderConfig): ChatProvider {
  const upstream = createHttpUpstream({ baseUrl: config.baseUrl, timeoutMs: config.timeoutMs });
  const headers = (credential: string | undefined, accept: string): Record<string, string> => ({
    "content-type": "application/json",
    accept,
    ...(credential !== undefined ? { authorization: `Bearer ${credential}` } : {}),
  });
  return {
    name: config.name,
    kind: "openai",
    defaultModel: config.defaultModel,
    models: config.models.map(modelById),
    credentialName: config.credential,
    description: `OpenAI-compatible chat completions at ${config.baseUrl}`,

    async *stream(request, { signal, credential }): AsyncGenerator<ChatChunk> {
      const messages = [...(request.systemPrompt !== "" ? [{ role: "system", content: request.systemPrompt }] : []), ...request.messages.map((m) => ({ role: m.role, content: m.content }))];
      const body = JSON.stringify({
        model: request.model,
        messages,
        max_tokens: request.maxTokens,
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        stream: true,
        stream_options: { include_usage: true },
      });
      const response = await upstream.send({ method: "POST", path: "chat/completions", headers: headers(credential, "text/event-stream"), body, signal });
      let finish: FinishReason | undefined;
      let usage: TokenUsage | undefined;
      let complete = false;
      try {
        // Deltas that arrived in one read go on as one: nothing waits, and a fast stream costs one
        // message per read instead of one per token.
        for await (const batch of readServerSentEventBatches(readBody(response.body, signal))) {
          let text = "";
          for (const { data } of batch) {
            if (data === "[DONE]") {
              if (text !== "") yield { type: "delta", text };
              complete = true;
              yield { type: "finish", reason: finish ?? "stop", usage };
              return;
            }
            const chunk = parseChunk(data);
            if (chunk.error !== undefined) {
              if (text !== "") yield { type: "delta", text };
              throw new ProviderError("server_error", "error event in the stream");
            }
            const choice = chunk.choices?.[0];
            const content = choice?.delta?.content;
            if (typeof content === "string") text += content;
            if (typeof choice?.finish_reason === "string") finish = FINISH[choice.finish_reason] ?? "stop";
            if (chunk.usage) usage = { inputTokens: tokenCount(chunk.usage.prompt_tokens), outputTokens: tokenCount(chunk.usage.completion_tokens) };
          }
          if (text !== "") yield { type: "delta", text };
        }
        // No [DONE]: the stream was cut. A finish reason already seen still makes a whole answer.
        if (finish !== undefined) {
          complete = true;
          yield { type: "finish", reason: finish, usage };
          return;
        }
        throw new ProviderError("connection", "the event stream ended before the answer did");
      } catch (error) {
        throw transportFailure(error, signal);
      } finally {
        finishBody(response.body, complete);
      }
    },

    probe: ({ signal, credential }) => probeModelListing(upstream, { path: "models", headers: headers(credential, "application/json"), signal }),
    close: () => upstream.close(),
  };
}

function parseChunk(data: string): CompletionChunk {
  const chunk = parseEventObject(data) as CompletionChunk;
  if (chunk.choices !== undefined && !Array.isArray(chunk.choices)) throw new ProviderError("malformed", "choices is not an array");
  return chunk;
}
