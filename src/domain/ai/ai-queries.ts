import type { AuditOutcome, AuditRecorder } from "../audit/audit-recorder.ts";
import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { FinishReason, ProviderError, TokenUsage } from "./chat-provider.ts";
import { failureLabel, providerFailure } from "./provider-failures.ts";
import type { ProviderRegistry } from "./provider-registry.ts";
import { estimateTokens, validateQuery, type QueryInput, type QueryLimits } from "./query-input.ts";
import { DEFAULT_RETRY_POLICY, streamWithRetries, type RetryPolicy } from "./retrying-stream.ts";
import type { BudgetAdmission, TokenBudgets } from "./token-budgets.ts";
import type { UsageLedger } from "./usage-ledger.ts";
import { auditedCaller } from "../audit/audit-caller.ts";

/** The end of an answer: why it stopped, what it cost (estimated when the provider did not say) and how long it took. */
export interface AnswerEnd {
  readonly finishReason: FinishReason;
  readonly usage: TokenUsage;
  readonly latencyMs: number;
}

/** An answer being streamed: who answers, then the text as it arrives; `end` resolves once it is counted. */
export interface AnswerStream {
  readonly provider: string;
  readonly model: string;
  /** Text deltas; returns (the generator's return value) the end once the answer is complete and counted. */
  readonly deltas: AsyncGenerator<string, AnswerEnd>;
}

export interface Answer extends AnswerEnd {
  readonly provider: string;
  readonly model: string;
  readonly text: string;
}

/** Asking a model, for every caller of one (AiService, jobs, audio). */
export interface AiQueries {
  /**
   * Opens a streamed answer (QueryStream, jobs, audio). Once the caller has called `deltas.next()`, it
   * must iterate to the end or call `deltas.return()`: that is what ends the upstream call and counts it.
   * `purpose` names the caller in the `ai.query` audit event's `mode` (default "stream"; e.g. "job").
   */
  open(ctx: RequestContext, input: QueryInput, signal: AbortSignal, options?: { purpose?: string }): Promise<AnswerStream>;
  /** The whole answer at once (Query). */
  query(ctx: RequestContext, input: QueryInput, signal: AbortSignal): Promise<Answer>;
}

/**
 * Query and QueryStream (and, through `open`, every other caller of a model: jobs, audio): validates the
 * query, resolves provider and model, reads the credential, admits the query against the key's token
 * budget, streams the completion with retries (only before the first delta), and then counts it for the
 * key and its owner and audits it (metadata only: never the prompt or the answer). Cancelling — the
 * caller's signal, or leaving the delta loop early — aborts the upstream request at once, and the tokens
 * spent so far are still counted.
 */
export function createAiQueries(deps: {
  registry: ProviderRegistry;
  budgets: TokenBudgets;
  ledger: UsageLedger;
  audit: AuditRecorder;
  limits: QueryLimits;
  retryPolicy?: RetryPolicy;
  onRetry?: (provider: string, error: ProviderError, attempt: number) => void;
}): AiQueries {
  const audit = (ctx: RequestContext, outcome: AuditOutcome, target: string, metadata: Record<string, string | number | boolean>, reason?: string) =>
    deps.audit.record({
      type: "ai.query",
      outcome,
      ...auditedCaller(ctx),
      target: { kind: "ai_model", id: target },
      ...(reason ? { reason } : {}),
      metadata: { user_id: ctx.principal.userId, ...metadata },
    });

  /**
   * Everything before the first byte of an answer: errors thrown here, and by the first `next()` of the
   * deltas (the budget check), come before any response message.
   */
  const open = async (ctx: RequestContext, input: QueryInput, signal: AbortSignal, mode: string): Promise<AnswerStream> => {
    const query = validateQuery(input, deps.limits);
    const { provider, model } = deps.registry.resolve(input.provider, input.model);
    const credential = await deps.registry.credentialOf(provider, ctx);
    const keyId = ctx.principal.kind === "api_key" ? ctx.principal.id : undefined;
    const request = { model, messages: query.messages, systemPrompt: query.systemPrompt, maxTokens: query.maxTokens, temperature: query.temperature };

    async function* deltas(): AsyncGenerator<string, AnswerEnd> {
      // The budget is taken when the answer starts (the first `next()`, still before any delta), so an
      // answer opened and dropped unread holds no place in the budget gate.
      let admission: BudgetAdmission | undefined;
      if (keyId !== undefined) {
        try {
          admission = await deps.budgets.admit(keyId, estimateTokens(query.promptChars) + query.maxTokens, signal);
        } catch (error) {
          if (error instanceof DomainError && error.reason === "budget_exceeded") audit(ctx, "denied", `${provider.name}/${model}`, { provider: provider.name, model, mode }, "budget_exceeded");
          throw error;
        }
      }
      const upstream = new AbortController();
      const onAbort = () => upstream.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      const started = performance.now();
      let outputChars = 0;
      let finish: FinishReason | undefined;
      let usage: TokenUsage | undefined;
      let failure: unknown;
      try {
        const chunks = streamWithRetries(provider, request, { signal: upstream.signal, credential }, deps.retryPolicy ?? DEFAULT_RETRY_POLICY, (error, attempt) =>
          deps.onRetry?.(provider.name, error, attempt),
        );
        for await (const chunk of chunks) {
          if (chunk.type === "delta") {
            outputChars += chunk.text.length;
            yield chunk.text;
          } else {
            finish = chunk.reason;
            usage = chunk.usage;
          }
        }
        if (finish === undefined) throw new Error(`provider ${provider.name} ended without a finish`);
      } catch (error) {
        failure = error;
        throw providerFailure(error, provider.name, model) ?? error;
      } finally {
        signal.removeEventListener("abort", onAbort);
        // Reached on success, on failure, and when our caller stops iterating (client cancel): in the
        // last case the upstream request is still open, and this is what closes it.
        if (finish === undefined) upstream.abort(signal.reason ?? new Error("cancelled"));
        const latencyMs = Math.round(performance.now() - started);
        const estimated = usage === undefined;
        const cost = usage ?? { inputTokens: estimateTokens(query.promptChars), outputTokens: estimateTokens(outputChars) };
        // Our caller leaving the loop, or its signal (client cancel, deadline) ending the upstream call.
        const cancelled = finish === undefined && (failure === undefined || signal.aborted);
        const reason: FinishReason = finish ?? (cancelled ? "cancelled" : "error");
        // A budgeted key's cost is in the database before its answer completes, so the next query on any
        // instance sees it; until then the query keeps its place in the budget gate. Other costs are
        // written a moment later, batched (the ledger retries failed writes).
        const durable = admission?.limited === true;
        const written = deps.ledger
          .record({ userId: ctx.principal.userId, keyId, inputTokens: cost.inputTokens, outputTokens: cost.outputTokens, latencyMs, at: new Date() }, { durable })
          .finally(() => admission?.release());
        if (durable) await written;
        const outcome: AuditOutcome = finish !== undefined ? "success" : cancelled ? "failure" : "error";
        audit(
          ctx,
          outcome,
          `${provider.name}/${model}`,
          { provider: provider.name, model, mode, input_tokens: cost.inputTokens, output_tokens: cost.outputTokens, usage_estimated: estimated, latency_ms: latencyMs, finish_reason: reason },
          finish !== undefined ? undefined : cancelled ? "cancelled" : failureLabel(failure),
        );
        lastEnd = { finishReason: reason, usage: cost, latencyMs };
      }
      return lastEnd;
    }
    let lastEnd: AnswerEnd = { finishReason: "error", usage: { inputTokens: 0, outputTokens: 0 }, latencyMs: 0 };

    return { provider: provider.name, model, deltas: deltas() };
  };

  return {
    open: (ctx, input, signal, options = {}) => open(ctx, input, signal, options.purpose ?? "stream"),

    async query(ctx, input, signal) {
      const answer = await open(ctx, input, signal, "unary");
      let text = "";
      for (;;) {
        const next = await answer.deltas.next();
        if (next.done) return { provider: answer.provider, model: answer.model, text, ...next.value };
        text += next.value;
      }
    },
  };
}
