import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ChatRole, FinishReason, HealthState, ModelCapability, type AiService, type ChatMessage, type QueryStreamResponseSchema } from "../../gen/portcullis/v1/ai_pb.js";
import type { AiQueries, AnswerEnd } from "../domain/ai/ai-queries.ts";
import type { ChatMessage as DomainMessage, FinishReason as DomainFinish, ModelCapability as DomainCapability } from "../domain/ai/chat-provider.ts";
import type { CredentialVault, CredentialView } from "../domain/ai/credential-vault.ts";
import type { HealthState as DomainHealth, ProviderRegistry } from "../domain/ai/provider-registry.ts";
import type { QueryInput } from "../domain/ai/query-input.ts";
import { DomainError } from "../domain/errors.ts";
import { callerOf } from "./caller.ts";
import { timestamp } from "./converters.ts";

/**
 * The text-to-speech engine as GetStatus reports it (the audio service provides it). Declared here,
 * where it is used, so the AI layer needs nothing of the audio layer.
 */
export interface TtsEngineReport {
  engineStatus(): { readonly name: string; readonly health: { readonly state: "serving" | "starting" | "idle" } | { readonly state: "down"; readonly detail: string } };
}

/** What GetStatus reports beyond the providers. */
export interface ServerStatus {
  readonly version: string;
  readonly startedAt: number;
  /** The TTS engine; without one, GetStatus reports HEALTH_STATE_UNSPECIFIED and says so. */
  readonly ttsEngine?: TtsEngineReport | undefined;
}

export interface AiHandlerDeps {
  readonly queries: AiQueries;
  readonly registry: ProviderRegistry;
  readonly vault: CredentialVault;
  readonly server: ServerStatus;
}

const FINISH_TO_PROTO: Readonly<Record<DomainFinish, FinishReason>> = {
  stop: FinishReason.STOP,
  length: FinishReason.LENGTH,
  content_filter: FinishReason.CONTENT_FILTER,
  cancelled: FinishReason.CANCELLED,
  error: FinishReason.ERROR,
};
const HEALTH_TO_PROTO: Readonly<Record<DomainHealth, HealthState>> = {
  unknown: HealthState.UNSPECIFIED,
  healthy: HealthState.HEALTHY,
  degraded: HealthState.DEGRADED,
  unhealthy: HealthState.UNHEALTHY,
};
const CAPABILITY_TO_PROTO: Readonly<Record<DomainCapability, ModelCapability>> = {
  chat: ModelCapability.CHAT,
  streaming: ModelCapability.STREAMING,
  system_prompt: ModelCapability.SYSTEM_PROMPT,
  vision: ModelCapability.VISION,
  tool_use: ModelCapability.TOOL_USE,
  json_output: ModelCapability.JSON_OUTPUT,
};

/** The proto's FinishReason of a domain finish reason. */
export function finishReasonToProto(reason: DomainFinish): FinishReason {
  return FINISH_TO_PROTO[reason];
}

function roleFromProto(message: ChatMessage, index: number): DomainMessage["role"] {
  switch (message.role) {
    case ChatRole.UNSPECIFIED:
    case ChatRole.USER:
      return "user";
    case ChatRole.ASSISTANT:
      return "assistant";
    default:
      throw new DomainError("invalid_argument", `message ${index + 1} has an unknown role`);
  }
}

/** Query and QueryStream requests share their fields (and SubmitJob adds an idempotency key to them). */
export function queryInput(req: { provider: string; model: string; prompt: string; messages: ChatMessage[]; systemPrompt: string; maxTokens?: number; temperature?: number }): QueryInput {
  return {
    provider: req.provider,
    model: req.model,
    prompt: req.prompt,
    messages: req.messages.map((m, i) => ({ role: roleFromProto(m, i), content: m.content })),
    systemPrompt: req.systemPrompt,
    maxTokens: req.maxTokens,
    temperature: req.temperature,
  };
}

/** TokenUsage of an answer's end (Query, QueryStream, Converse), each count clamped to int32. */
export function usageMessage(end: AnswerEnd) {
  const { inputTokens, outputTokens } = end.usage;
  const clamp = (n: number) => Math.min(n, 2 ** 31 - 1);
  return { inputTokens: clamp(inputTokens), outputTokens: clamp(outputTokens), totalTokens: clamp(inputTokens + outputTokens) };
}

/** Serving is healthy; an engine not started yet (it starts on first use) or starting is not known yet. */
function ttsEngineMessage(engine: TtsEngineReport | undefined) {
  if (engine === undefined) return { name: "", health: HealthState.UNSPECIFIED, detail: "no text-to-speech engine is configured" };
  const { name, health } = engine.engineStatus();
  switch (health.state) {
    case "serving":
      return { name, health: HealthState.HEALTHY, detail: "" };
    case "starting":
      return { name, health: HealthState.UNSPECIFIED, detail: "starting" };
    case "idle":
      return { name, health: HealthState.UNSPECIFIED, detail: "not started yet: it starts on first use" };
    case "down":
      return { name, health: HealthState.UNHEALTHY, detail: health.detail };
  }
}

function credentialMessage(c: CredentialView) {
  return { id: c.id, provider: c.provider, name: c.name, hint: c.hint, createdAt: timestamp(c.createdAt), updatedAt: timestamp(c.updatedAt), keyVersion: c.keyVersion };
}

/** AiService's queries, status, models and credential vault: request → domain → response. */
export function createAiHandlers(deps: AiHandlerDeps): Partial<ServiceImpl<typeof AiService>> {
  const { queries, registry, vault } = deps;
  return {
    async query(req, ctx) {
      const answer = await queries.query(callerOf(ctx), queryInput(req), ctx.signal);
      return {
        text: answer.text,
        model: answer.model,
        provider: answer.provider,
        usage: usageMessage(answer),
        finishReason: FINISH_TO_PROTO[answer.finishReason],
        latencyMs: BigInt(answer.latencyMs),
      };
    },

    async *queryStream(req, ctx) {
      // Errors up to here (bad input, unknown model, no credential, budget) come before any message.
      const answer = await queries.open(callerOf(ctx), queryInput(req), ctx.signal);
      const header = { provider: answer.provider, model: answer.model };
      let first = true;
      let ended = false;
      try {
        for (;;) {
          const next = await answer.deltas.next();
          const message: MessageInitShape<typeof QueryStreamResponseSchema> = next.done
            ? { textDelta: "", usage: usageMessage(next.value), finishReason: FINISH_TO_PROTO[next.value.finishReason] }
            : { textDelta: next.value };
          yield first ? { ...message, ...header } : message;
          first = false;
          if (next.done) {
            ended = true;
            return;
          }
        }
      } finally {
        // The client went away mid-answer: end the upstream call and count what was spent.
        if (!ended) await answer.deltas.return(undefined as never).catch(() => undefined);
      }
    },

    getStatus() {
      return {
        version: deps.server.version,
        uptime: durationFromMs(Date.now() - deps.server.startedAt),
        providers: registry.statuses().map((p) => ({
          name: p.name,
          health: HEALTH_TO_PROTO[p.health],
          detail: p.detail,
          isDefault: p.isDefault,
          defaultModel: p.defaultModel,
          checkedAt: timestamp(p.checkedAt),
          latencyMs: BigInt(p.latencyMs),
        })),
        ttsEngine: ttsEngineMessage(deps.server.ttsEngine),
      };
    },

    listModels(req) {
      return {
        models: registry.models(req.provider).map((m) => ({
          provider: m.provider,
          id: m.id,
          displayName: m.displayName,
          capabilities: m.capabilities.map((c) => CAPABILITY_TO_PROTO[c]),
          contextWindowTokens: m.contextWindowTokens,
          maxOutputTokens: m.maxOutputTokens,
          isDefault: m.isDefault,
        })),
      };
    },

    async putProviderCredential(req, ctx) {
      const put = await vault.put(callerOf(ctx), { provider: req.provider, name: req.name, secret: req.secret });
      return { credential: credentialMessage(put.credential), replaced: put.replaced };
    },

    async listProviderCredentials(req, ctx) {
      const page = await vault.list(callerOf(ctx), { provider: req.provider, pageSize: req.pageSize, pageToken: req.pageToken });
      return { credentials: page.credentials.map(credentialMessage), nextPageToken: page.nextPageToken };
    },

    async deleteProviderCredential(req, ctx) {
      await vault.delete(callerOf(ctx), req.credentialId.trim());
      return {};
    },

    async rotateCredentialEncryption(_req, ctx) {
      const rotated = await vault.rotate(callerOf(ctx));
      return { reencryptedCount: rotated.reencrypted, keyVersion: rotated.keyVersion };
    },
  };
}
