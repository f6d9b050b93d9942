import { DomainError } from "../errors.ts";
import type { RequestContext } from "../request-context.ts";
import type { ChatProvider, ModelInfo, ProbeResult } from "./chat-provider.ts";
import type { CredentialCache } from "./credential-cache.ts";

export type HealthState = "unknown" | "healthy" | "degraded" | "unhealthy";

export interface ProviderStatusView {
  readonly name: string;
  readonly health: HealthState;
  readonly detail: string;
  readonly isDefault: boolean;
  readonly defaultModel: string;
  readonly checkedAt: Date | undefined;
  readonly latencyMs: number;
}

export interface ModelView extends ModelInfo {
  readonly provider: string;
  readonly isDefault: boolean;
}

/**
 * The configured providers: resolving a query's provider and model (NOT_FOUND for unknown ones), the
 * credential each needs (read at call time through the credential cache), and their health and models
 * from a periodic cheap probe, never from queries. Models an openai-kind provider reports at
 * `/models` join its configured ones (cached until the next probe).
 */
export interface ProviderRegistry {
  resolve(providerName: string, model: string): { provider: ChatProvider; model: string };
  /** The provider's secret; UNAVAILABLE when it needs one and none is stored. */
  credentialOf(provider: ChatProvider, ctx?: RequestContext): Promise<string | undefined>;
  kindOf(providerName: string): ChatProvider["kind"] | undefined;
  statuses(): ProviderStatusView[];
  /** Ordered by provider, then id; NOT_FOUND for an unknown provider filter. */
  models(providerFilter: string): ModelView[];
  /** Probes every provider now (also done on start and every interval). */
  probeAll(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

interface Probed {
  readonly result: ProbeResult;
  readonly at: Date;
}

export function createProviderRegistry(deps: {
  providers: readonly ChatProvider[];
  defaultProvider: string;
  credentials: CredentialCache;
  probeIntervalMs: number;
  probeTimeoutMs?: number;
  now?: () => Date;
}): ProviderRegistry {
  const now = deps.now ?? (() => new Date());
  const byName = new Map(deps.providers.map((p) => [p.name, p]));
  const probed = new Map<string, Probed>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = new AbortController();

  const knownModels = (provider: ChatProvider): ModelInfo[] => {
    const models = new Map(provider.models.map((m) => [m.id, m]));
    for (const m of probed.get(provider.name)?.result.models ?? []) if (!models.has(m.id)) models.set(m.id, m);
    return [...models.values()];
  };

  const credentialOf = async (provider: ChatProvider, ctx?: RequestContext) => {
    if (provider.credentialName === undefined) return undefined;
    const secret = await deps.credentials.secretFor(provider.name, provider.credentialName, ctx);
    if (secret === undefined) throw new DomainError("unavailable", `provider ${provider.name} has no credential: store "${provider.credentialName}" with PutProviderCredential`);
    return secret;
  };

  const probe = async (provider: ChatProvider) => {
    const signal = AbortSignal.any([stopped.signal, AbortSignal.timeout(deps.probeTimeoutMs ?? 10_000)]);
    let result: ProbeResult;
    try {
      result = await provider.probe({ signal, credential: await credentialOf(provider) });
    } catch (error) {
      if (stopped.signal.aborted) return;
      result = { health: "unhealthy", detail: error instanceof DomainError ? error.message : "the probe failed", latencyMs: 0 };
    }
    probed.set(provider.name, { result, at: now() });
  };

  const probeAll = async () => {
    await Promise.all(deps.providers.map(probe));
  };

  return {
    resolve(providerName, model) {
      const name = providerName.trim() || deps.defaultProvider;
      const provider = byName.get(name);
      if (!provider) throw new DomainError("not_found", `unknown provider ${JSON.stringify(name.slice(0, 64))}`);
      const id = model.trim() || provider.defaultModel;
      if (!knownModels(provider).some((m) => m.id === id)) throw new DomainError("not_found", `provider ${name} has no model ${JSON.stringify(id.slice(0, 200))}`);
      return { provider, model: id };
    },
    credentialOf,
    kindOf: (name) => byName.get(name)?.kind,
    statuses() {
      return deps.providers.map((p) => {
        const last = probed.get(p.name);
        return {
          name: p.name,
          health: last?.result.health ?? "unknown",
          detail: last ? last.result.detail || (p.kind === "local" ? p.description : "") : "not checked yet",
          isDefault: p.name === deps.defaultProvider,
          defaultModel: p.defaultModel,
          checkedAt: last?.at,
          latencyMs: last?.result.latencyMs ?? 0,
        };
      });
    },
    models(providerFilter) {
      const filter = providerFilter.trim();
      if (filter !== "" && !byName.has(filter)) throw new DomainError("not_found", `unknown provider ${JSON.stringify(filter.slice(0, 64))}`);
      const out: ModelView[] = [];
      for (const provider of [...deps.providers].sort((a, b) => a.name.localeCompare(b.name))) {
        if (filter !== "" && provider.name !== filter) continue;
        for (const m of knownModels(provider).sort((a, b) => a.id.localeCompare(b.id))) out.push({ ...m, provider: provider.name, isDefault: m.id === provider.defaultModel });
      }
      return out;
    },
    probeAll,
    start() {
      if (timer) return;
      stopped = new AbortController();
      void probeAll();
      timer = setInterval(() => void probeAll(), deps.probeIntervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      stopped.abort();
      await Promise.all(deps.providers.map((p) => p.close().catch(() => undefined)));
    },
  };
}
