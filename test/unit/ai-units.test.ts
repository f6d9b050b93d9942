import { writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.ts";
import { ProviderError } from "../../src/domain/ai/chat-provider.ts";
import { createCredentialEnvelope } from "../../src/domain/ai/credential-envelope.ts";
import { readServerSentEvents } from "../../src/providers/sse-reader.ts";
import { createUsageLedger, usageSubject, type AiUsageStore, type UsageCounters } from "../../src/domain/ai/usage-ledger.ts";

async function events(chunks: string[]) {
  const out: Array<{ event: string; data: string }> = [];
  async function* body() {
    for (const c of chunks) yield Buffer.from(c, "utf8");
  }
  for await (const e of readServerSentEvents(body())) out.push(e);
  return out;
}

describe("server-sent events reader", () => {
  it("dispatches on blank lines whatever the line endings and chunk boundaries", async () => {
    expect(await events(["data: a\r", "\n\r\ndata: b\n", "\nevent: x\rdata: c\rdata: d\r\r"])).toEqual([
      { event: "message", data: "a" },
      { event: "message", data: "b" },
      { event: "x", data: "c\nd" },
    ]);
  });

  it("skips comments and fields it does not know, keeps a multi-byte character split across chunks", async () => {
    const euro = Buffer.from("data: €\n\n", "utf8");
    const out: string[] = [];
    async function* body() {
      yield Buffer.from(": keep-alive\nid: 7\nretry: 10\n\n", "utf8");
      yield euro.subarray(0, 7);
      yield euro.subarray(7);
    }
    for await (const e of readServerSentEvents(body())) out.push(e.data);
    expect(out).toEqual(["€"]);
  });

  it("drops an event cut off before its blank line, and refuses an event over 1 MiB", async () => {
    expect(await events(["data: whole\n\ndata: cut"])).toEqual([{ event: "message", data: "whole" }]);
    await expect(events(["data: ", "x".repeat(1024 * 1024 + 10)])).rejects.toBeInstanceOf(ProviderError);
  });
});

describe("credential envelope", () => {
  const master = randomBytes(32);
  const envelope = createCredentialEnvelope(master);
  const owner = { id: "cred_a", provider: "openai" };

  it("opens what it sealed, and nothing moved to another record, provider or key", () => {
    const sealed = envelope.seal("sk-very-secret", owner, 1);
    expect(envelope.open(sealed, owner)).toBe("sk-very-secret");
    expect(sealed.ciphertext).not.toContain("secret");
    expect(() => envelope.open(sealed, { ...owner, id: "cred_b" })).toThrow(/cannot open/);
    expect(() => envelope.open(sealed, { ...owner, provider: "anthropic" })).toThrow(/cannot open/);
    expect(() => envelope.open({ ...sealed, keyVersion: 2 }, owner)).toThrow(/cannot open/);
    expect(() => createCredentialEnvelope(randomBytes(32)).open(sealed, owner)).toThrow(/cannot open/);
    const other = envelope.seal("sk-other", { id: "cred_b", provider: "openai" }, 1);
    expect(() => envelope.open({ ...sealed, wrappedKey: other.wrappedKey }, owner)).toThrow();
  });

  it("rewraps the data key under a new version without touching the ciphertext", () => {
    const sealed = envelope.seal("sk-rotate-me", owner, 1);
    const rotated = envelope.rewrap(sealed, owner, 2);
    expect([rotated.keyVersion, rotated.ciphertext === sealed.ciphertext, rotated.wrappedKey === sealed.wrappedKey]).toEqual([2, true, false]);
    expect(envelope.open(rotated, owner)).toBe("sk-rotate-me");
    expect(createCredentialEnvelope(master).open(rotated, owner)).toBe("sk-rotate-me");
  });
});

describe("PORTCULLIS_AI_PROVIDERS", () => {
  const load = (env: Record<string, string>, cwd = process.cwd()) => loadConfig({ PORTCULLIS_DATA_DIR: "/tmp/x", ...env }, cwd);
  const problem = (env: Record<string, string>) => {
    try {
      load(env);
    } catch (error) {
      if (error instanceof ConfigError) return error;
    }
    throw new Error("expected a configuration error");
  };

  it("unset: only the built-in local provider, which is the default", () => {
    const { ai } = load({});
    expect(ai.providers.map((p) => [p.name, p.kind])).toEqual([["local", "local"]]);
    expect([ai.defaultProvider, ai.defaultMaxTokens, ai.maxTokens]).toEqual(["local", 1024, 4096]);
  });

  it("reads a JSON array or @file, with defaults for base URLs, the default flag and models", async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-ai-config-"));
    try {
      await writeFile(
        join(dir, "providers.json"),
        JSON.stringify([
          { name: "oa", kind: "openai", defaultModel: "gpt-x", credential: "main" },
          { name: "an", kind: "anthropic", models: ["claude-y", "claude-z"], default: true },
        ]),
      );
      const { ai } = load({ PORTCULLIS_AI_PROVIDERS: "@providers.json" }, dir);
      expect(ai.defaultProvider).toBe("an");
      expect(ai.providers[0]).toMatchObject({ baseUrl: "https://api.openai.com/v1", models: ["gpt-x"], credential: "main", timeoutMs: 60_000 });
      expect(ai.providers[1]).toMatchObject({ baseUrl: "https://api.anthropic.com", defaultModel: "claude-y", models: ["claude-y", "claude-z"] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a malformed value is one error naming the variable, never echoing the value", () => {
    const bad = [
      "not json",
      "[]",
      "{}",
      JSON.stringify([{ name: "a", kind: "openai" }]),
      JSON.stringify([{ name: "a", kind: "cohere", defaultModel: "m" }]),
      JSON.stringify([{ name: "a", kind: "openai", defaultModel: "m", baseUrl: "https://user:sk-in-url@example.com/v1" }]),
      JSON.stringify([{ name: "a", kind: "openai", defaultModel: "m", timeoutMs: 5 }]),
      JSON.stringify([
        { name: "a", kind: "local", default: true },
        { name: "a", kind: "local" },
      ]),
      JSON.stringify([
        { name: "a", kind: "local", default: true },
        { name: "b", kind: "local", default: true },
      ]),
      JSON.stringify([{ name: "a", kind: "openai", defaultModel: "m", apiKey: "sk-nope" }]),
      "@/nonexistent/providers.json",
    ];
    for (const value of bad) {
      const error = problem({ PORTCULLIS_AI_PROVIDERS: value });
      expect(error.variable, value).toBe("PORTCULLIS_AI_PROVIDERS");
      expect(error.message).not.toContain("sk-in-url");
      expect(error.message).not.toContain("sk-nope");
    }
    expect(problem({ PORTCULLIS_AI_DEFAULT_MAX_TOKENS: "5000" }).variable).toBe("PORTCULLIS_AI_DEFAULT_MAX_TOKENS");
    expect(problem({ PORTCULLIS_CREDENTIAL_KEY_VERSION: "0" }).variable).toBe("PORTCULLIS_CREDENTIAL_KEY_VERSION");
  });
});

describe("usage ledger", () => {
  it("keeps a past budget period only in the store once written, the current one in memory too", async () => {
    const saved = new Map<string, UsageCounters>();
    const store: AiUsageStore = {
      save: async (_instance, counters) => {
        for (const [subject, c] of counters) saved.set(subject, { ...c });
      },
      totals: async () => new Map(),
      totalsWithPrefix: async () => new Map(),
    };
    const ledger = createUsageLedger({ store });
    const old = new Date(Date.now() - 3 * 86_400_000);
    await ledger.record({ userId: "u", keyId: "k", inputTokens: 2, outputTokens: 3, latencyMs: 1, at: old }, { durable: true });
    await ledger.record({ userId: "u", keyId: "k", inputTokens: 1, outputTokens: 1, latencyMs: 1, at: new Date() }, { durable: true });
    const [oldDay, today] = [usageSubject.day("k", old), usageSubject.day("k", new Date())];
    expect(saved.get(oldDay)).toMatchObject({ inputTokens: 2, outputTokens: 3 });
    const totals = await ledger.totals([oldDay, today, usageSubject.key("k")]);
    expect([totals.get(oldDay), totals.get(today)?.queries, totals.get(usageSubject.key("k"))?.queries]).toEqual([undefined, 1, 2]);
    await ledger.stop();
  });
});
