import { setImmediate as nextTurn } from "node:timers/promises";
import { LOCAL_PROVIDER } from "../config/ai-config.ts";
import type { ChatChunk, ChatProvider, ChatRequest } from "../domain/ai/chat-provider.ts";

const DESCRIPTION = "built-in deterministic responder: not a language model; it restates the question word by word, offline, with no key";
const QUOTED_WORDS = 60;

/**
 * The provider that works with no configuration, no key and no download. It is honest about what it is:
 * ListModels names its one model "local-echo" as a deterministic responder and GetStatus says the same.
 * The answer is a fixed sentence plus the last user message quoted back (at most 60 words), streamed one
 * word per delta with a turn of the event loop between words, and cut at max_tokens (a word counts as a
 * token). It serves to try the gateway, its streaming and its accounting end to end.
 */
export function createLocalProvider(): ChatProvider {
  return {
    name: LOCAL_PROVIDER.name,
    kind: "local",
    defaultModel: LOCAL_PROVIDER.defaultModel,
    models: [
      {
        id: LOCAL_PROVIDER.defaultModel,
        displayName: "Local echo (deterministic responder, not a language model)",
        capabilities: ["chat", "streaming", "system_prompt"],
        contextWindowTokens: 0,
        maxOutputTokens: 0,
      },
    ],
    credentialName: undefined,
    description: DESCRIPTION,

    async *stream(request, { signal }): AsyncGenerator<ChatChunk> {
      const words = answerWords(request);
      const inputTokens = countWords(request.systemPrompt) + request.messages.reduce((n, m) => n + countWords(m.content), 0);
      let outputTokens = 0;
      for (const word of words) {
        if (outputTokens >= request.maxTokens) {
          yield { type: "finish", reason: "length", usage: { inputTokens, outputTokens } };
          return;
        }
        await nextTurn(undefined, { signal });
        outputTokens++;
        yield { type: "delta", text: outputTokens === 1 ? word : ` ${word}` };
      }
      yield { type: "finish", reason: "stop", usage: { inputTokens, outputTokens } };
    },

    probe: () => Promise.resolve({ health: "healthy", detail: DESCRIPTION, latencyMs: 0 }),
    close: () => Promise.resolve(),
  };
}

function answerWords(request: ChatRequest): string[] {
  const question = [...request.messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const quoted = question.split(/\s+/).filter((w) => w !== "");
  const shown = quoted.slice(0, QUOTED_WORDS).join(" ") + (quoted.length > QUOTED_WORDS ? " …" : "");
  return `This is the Portcullis local responder, not a language model. You asked: «${shown}». Configure PORTCULLIS_AI_PROVIDERS for real answers.`.split(" ");
}

function countWords(text: string): number {
  return text.split(/\s+/).filter((w) => w !== "").length;
}
