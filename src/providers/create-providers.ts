import type { AiProviderConfig } from "../config/ai-config.ts";
import type { ChatProvider } from "../domain/ai/chat-provider.ts";
import { createAnthropicProvider } from "./anthropic-provider.ts";
import { createLocalProvider } from "./local-provider.ts";
import { createOpenAiProvider } from "./openai-provider.ts";

/** One adapter per configured provider, by kind. */
export function createProviders(configs: readonly AiProviderConfig[]): ChatProvider[] {
  return configs.map((config) => {
    switch (config.kind) {
      case "openai":
        return createOpenAiProvider(config);
      case "anthropic":
        return createAnthropicProvider(config);
      case "local":
        return { ...createLocalProvider(), name: config.name };
      default:
        throw new Error(`unknown provider kind ${String((config as { kind: unknown }).kind)}`);
    }
  });
}
