import type { ClientReadableStream } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrpcJsClient } from "../../clients/grpc-js.ts";
import { AiService, FinishReason, HealthState, type QueryStreamResponse } from "../../gen/portcullis/v1/ai_pb.js";
import { closedPort, Code, errorInfo, failureOf, startAiGateway, startFakes, storeFakeCredentials, tokenFor } from "../helpers/ai-gateway.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startFakeProvider, type FakeKind, type FakeProvider } from "../helpers/fake-providers.ts";
import type { IdentityServer } from "../helpers/identity-server.ts";

/**
 * Query and QueryStream against real HTTP fakes of both wire formats, through connect-node (gRPC and
 * Connect) and @grpc/grpc-js: whole and streamed answers, usage, every error class, cancellation.
 */
describe("AI queries", () => {
  const dbName = testDatabaseName(import.meta.url);
  let gw: IdentityServer;
  let fakes: Record<FakeKind, FakeProvider>;
  let userToken = "";
  const ai = (protocol: "grpc" | "connect" = "grpc") => gw.client(AiService, { token: userToken, protocol });

  beforeAll(async () => {
    fakes = await startFakes();
    const down = { name: "down", kind: "openai", baseUrl: `http://127.0.0.1:${await closedPort()}/v1`, defaultModel: "m" };
    const noKey = { name: "keyless", kind: "anthropic", baseUrl: fakes.anthropic.baseUrl, defaultModel: "claude-fake", credential: "missing" };
    gw = await startAiGateway(dbName, fakes, { PORTCULLIS_AI_MAX_TOKENS: "2048" }, [down, noKey]);
    const ownerToken = await tokenFor(gw, "olive", "owner");
    userToken = await tokenFor(gw, "quentin", "user");
    await storeFakeCredentials(gw, ownerToken, fakes);
  });
  afterAll(async () => {
    await gw?.close();
    await fakes?.openai.close();
    await fakes?.anthropic.close();
  });

  describe.each(["openai", "anthropic"] as const)("%s wire format", (kind) => {
    const fake = () => fakes[kind];
    const lastCompletion = () => fake().completions().at(-1)!;

    it("answers a whole query with the provider's usage, sending the stored credential", async () => {
      const answer = await ai().query({ provider: kind, prompt: "Say hello", systemPrompt: "Be brief.", temperature: 0.5 });
      expect(answer).toMatchObject({ text: "Hello from the fake provider.", provider: kind, model: kind === "openai" ? "gpt-fake" : "claude-fake", finishReason: FinishReason.STOP });
      expect(answer.usage).toMatchObject({ inputTokens: 7, outputTokens: 5, totalTokens: 12 });
      const sent = lastCompletion();
      if (kind === "openai") {
        expect(sent.headers["authorization"]).toBe(`Bearer ${fake().apiKey}`);
        expect(sent.body).toMatchObject({
          stream: true,
          stream_options: { include_usage: true },
          max_tokens: 1024,
          temperature: 0.5,
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "Say hello" },
          ],
        });
      } else {
        expect(sent.headers["x-api-key"]).toBe(fake().apiKey);
        expect(sent.headers["anthropic-version"]).toBe("2023-06-01");
        expect(sent.body).toMatchObject({ stream: true, max_tokens: 1024, temperature: 0.5, system: "Be brief.", messages: [{ role: "user", content: "Say hello" }] });
      }
    });

    it("consecutive queries reuse one connection to the provider (the answer's end is drained, not cut)", async () => {
      await ai().query({ provider: kind, prompt: "warm" });
      await new Promise((resolve) => setTimeout(resolve, 80));
      const before = fake().connections;
      // The body ends a moment after the last event, as when a provider flushes its final chunk late.
      for (let i = 0; i < 5; i++) fake().enqueue({ kind: "answer", lingerMs: 30 });
      for (let i = 0; i < 5; i++) {
        await ai().query({ provider: kind, prompt: `again ${i}` });
        await new Promise((resolve) => setTimeout(resolve, 80)); // the body has ended: the connection is idle
      }
      expect(fake().connections - before).toBe(0);
    });

    it("streams deltas as the provider sends them: the first arrives while the provider holds the rest", async () => {
      fake().enqueue({ kind: "answer", hold: true, usage: { input: 11, output: 5 } });
      const stream = ai("connect").queryStream({ provider: kind, prompt: "Stream please" })[Symbol.asyncIterator]();
      const first = await stream.next();
      expect(first.value).toMatchObject({ textDelta: "Hello", provider: kind, model: kind === "openai" ? "gpt-fake" : "claude-fake" });
      expect(fake().sentLast).toBe(false);
      fake().release();
      const rest: QueryStreamResponse[] = [];
      for (let next = await stream.next(); !next.done; next = await stream.next()) rest.push(next.value);
      expect(rest.map((m) => m.textDelta).join("")).toBe(" from the fake provider.");
      const last = rest.at(-1)!;
      expect(last.finishReason).toBe(FinishReason.STOP);
      expect(last.usage).toMatchObject({ inputTokens: 11, outputTokens: 5, totalTokens: 16 });
      expect(rest.slice(0, -1).every((m) => m.finishReason === FinishReason.UNSPECIFIED && m.usage === undefined)).toBe(true);
    });

    it("streams the same over gRPC-Web", async () => {
      const messages: QueryStreamResponse[] = [];
      for await (const m of gw.client(AiService, { token: userToken, protocol: "grpc-web" }).queryStream({ provider: kind, prompt: "web" })) messages.push(m);
      expect(messages.map((m) => m.textDelta).join("")).toBe("Hello from the fake provider.");
      expect(messages[0]).toMatchObject({ provider: kind });
      expect(messages.at(-1)).toMatchObject({ finishReason: FinishReason.STOP, usage: { totalTokens: 12 } });
    });

    it("streams through @grpc/grpc-js, and a length cut-off is reported as such", async () => {
      fake().enqueue({ kind: "answer", words: ["one", " two"], finish: kind === "openai" ? "length" : "max_tokens" });
      const client = createGrpcJsClient(AiService, `127.0.0.1:${gw.port}`);
      try {
        const messages: QueryStreamResponse[] = [];
        for await (const m of client.queryStream({ provider: kind, prompt: "Count", maxTokens: 2 }, { metadata: { authorization: `Bearer ${userToken}` } })) messages.push(m);
        expect(messages.map((m) => m.textDelta).join("")).toBe("one two");
        expect(messages.at(-1)!.finishReason).toBe(FinishReason.LENGTH);
        expect(lastCompletion().body).toMatchObject({ max_tokens: 2 });
      } finally {
        client.close();
      }
    });

    it("a 401 from the provider is UNAVAILABLE, and the provider's body (echoing the key) reaches no answer or log", async () => {
      const stored = fake().apiKey;
      fake().apiKey = `${stored}-rotated-upstream`;
      try {
        const error = await failureOf(ai().query({ provider: kind, prompt: "hi" }));
        expect(error.code).toBe(Code.Unavailable);
        expect(error.rawMessage).toMatch(/refused its credential/);
        const streamed = await failureOf(async () => {
          for await (const _ of ai("connect").queryStream({ provider: kind, prompt: "hi" })) void _;
        });
        expect(streamed.code).toBe(Code.Unavailable);
        for (const text of [error.message, streamed.message, JSON.stringify(error.details), gw.logText()]) expect(text).not.toContain(stored);
        expect(fake().completions().length).toBeGreaterThan(0);
      } finally {
        fake().apiKey = stored;
      }
    });

    it("a 429 with a short retry-after is retried; a long one fails at once with UNAVAILABLE and the wait", async () => {
      const before = fake().completions().length;
      fake().enqueue({ kind: "status", status: 429, headers: { "retry-after": "0" } });
      expect((await ai().query({ provider: kind, prompt: "again" })).text).toBe("Hello from the fake provider.");
      expect(fake().completions().length - before).toBe(2);
      fake().enqueue({ kind: "status", status: 429, headers: { "retry-after": "3600" } });
      const error = await failureOf(ai().query({ provider: kind, prompt: "later" }));
      expect(error.code).toBe(Code.Unavailable);
      expect(Number(errorInfo(error)?.retryAfterMs)).toBeGreaterThan(3_500_000);
      expect(fake().completions().length - before).toBe(3);
    });

    it("a 500 then success is retried and answers; 500 three times is UNAVAILABLE", async () => {
      const before = fake().completions().length;
      fake().enqueue({ kind: "status", status: 500 });
      expect((await ai().query({ provider: kind, prompt: "retry" })).text).toBe("Hello from the fake provider.");
      expect(fake().completions().length - before).toBe(2);
      fake().enqueue({ kind: "status", status: 503 }, { kind: "status", status: 502 }, { kind: "status", status: 500 });
      expect((await failureOf(ai().query({ provider: kind, prompt: "retry" }))).code).toBe(Code.Unavailable);
      expect(fake().completions().length - before).toBe(5);
    });

    it("a provider that does not answer in time is DEADLINE_EXCEEDED", async () => {
      fake().enqueue({ kind: "hang" });
      const error = await failureOf(ai().query({ provider: `${kind}-hasty`, prompt: "slow" }));
      expect(error.code).toBe(Code.DeadlineExceeded);
    });

    it("a malformed event stream is UNAVAILABLE, reported in place of the last message of a stream", async () => {
      fake().enqueue({ kind: "malformed" });
      expect((await failureOf(ai().query({ provider: kind, prompt: "x" }))).code).toBe(Code.Unavailable);
      fake().enqueue({ kind: "cut" });
      const before = fake().completions().length;
      const received: string[] = [];
      const error = await failureOf(async () => {
        for await (const m of ai("connect").queryStream({ provider: kind, prompt: "x" })) received.push(m.textDelta);
      });
      expect(received).toEqual(["partial"]);
      expect(error.code).toBe(Code.Unavailable);
      // A reset is retryable, but not once part of the answer has gone to the client.
      expect(fake().completions().length - before).toBe(1);

      // The provider's own error event mid-stream: the same, and its text (here echoing the key) stays out.
      fake().enqueue({ kind: "error-event" });
      const deltas: string[] = [];
      const overloaded = await failureOf(async () => {
        for await (const m of ai("connect").queryStream({ provider: kind, prompt: "x" })) deltas.push(m.textDelta);
      });
      expect([deltas, overloaded.code]).toEqual([["partial"], Code.Unavailable]);
      expect(overloaded.message).not.toContain(fake().apiKey);
    });

    it("cancelling the call aborts the upstream request at once (the fake sees the disconnect)", async () => {
      fake().enqueue({ kind: "answer", hold: true });
      const disconnected = fake().nextDisconnect();
      const controller = new AbortController();
      const stream = ai().queryStream({ provider: kind, prompt: "long answer" }, { signal: controller.signal })[Symbol.asyncIterator]();
      expect((await stream.next()).value?.textDelta).toBe("Hello");
      controller.abort();
      await disconnected;
      expect(fake().sentLast).toBe(false);
      fake().release();

      // The same through grpc-js's cancel().
      fake().enqueue({ kind: "answer", hold: true });
      const again = fake().nextDisconnect();
      const client = createGrpcJsClient(AiService, `127.0.0.1:${gw.port}`);
      try {
        const call = client.queryStream({ provider: kind, prompt: "long answer" }, { metadata: { authorization: `Bearer ${userToken}` } }) as ClientReadableStream<QueryStreamResponse>;
        await new Promise((resolve) => call.once("data", resolve));
        call.on("error", () => undefined);
        call.cancel();
        await again;
        fake().release();
      } finally {
        client.close();
      }
    });
  });

  it("the client's deadline ends the upstream request too (DEADLINE_EXCEEDED, the fake sees the disconnect)", async () => {
    fakes.openai.enqueue({ kind: "hang" });
    const disconnected = fakes.openai.nextDisconnect();
    const error = await failureOf(ai().query({ provider: "openai", prompt: "slow" }, { timeoutMs: 300 }));
    expect(error.code).toBe(Code.DeadlineExceeded);
    await disconnected;
  });

  it("a redirect is never followed: the credential goes to the configured base URL only", async () => {
    const elsewhere = await startFakeProvider("openai", { apiKey: "never-the-real-key" });
    try {
      fakes.openai.enqueue({ kind: "status", status: 307, headers: { location: `${elsewhere.baseUrl}/chat/completions` } });
      const error = await failureOf(ai().query({ provider: "openai", prompt: "follow me" }));
      expect([error.code, error.rawMessage]).toEqual([Code.Unavailable, expect.stringMatching(/redirect \(HTTP 307\), which is not followed/)]);
      expect(elsewhere.requests).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });

  it("a provider that refuses connections is UNAVAILABLE", async () => {
    const error = await failureOf(ai().query({ provider: "down", prompt: "anyone?" }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("provider down cannot be reached");
  });

  it("a provider whose credential is not stored is UNAVAILABLE, saying which credential to store", async () => {
    const error = await failureOf(ai().query({ provider: "keyless", prompt: "hi" }));
    expect([error.code, error.rawMessage]).toEqual([Code.Unavailable, 'provider keyless has no credential: store "missing" with PutProviderCredential']);
  });

  it("the default provider and model answer a query that names neither", async () => {
    const answer = await ai().query({ prompt: "default?" });
    expect(answer).toMatchObject({ provider: "openai", model: "gpt-fake" });
  });

  it("bad input is INVALID_ARGUMENT or NOT_FOUND and never reaches a provider", async () => {
    const before = fakes.openai.completions().length + fakes.anthropic.completions().length;
    const cases: Array<[object, Code, RegExp]> = [
      [{ provider: "nope", prompt: "x" }, Code.NotFound, /unknown provider/],
      [{ provider: "openai", model: "gpt-none", prompt: "x" }, Code.NotFound, /has no model/],
      [{ provider: "openai" }, Code.InvalidArgument, /exactly one of prompt and messages/],
      [{ prompt: "x", messages: [{ content: "y" }] }, Code.InvalidArgument, /exactly one of prompt and messages/],
      [{ prompt: "x", temperature: 3.0 }, Code.InvalidArgument, /temperature/],
      [{ prompt: "x", temperature: Number.NaN }, Code.InvalidArgument, /temperature/],
      [{ prompt: "x", maxTokens: -1 }, Code.InvalidArgument, /max_tokens/],
      [{ prompt: "x", maxTokens: 0 }, Code.InvalidArgument, /max_tokens/],
      [{ messages: [{ content: "hi" }, { role: 2, content: "hello" }] }, Code.InvalidArgument, /end with a user message/],
      [{ messages: [{ role: 7, content: "hi" }] }, Code.InvalidArgument, /unknown role/],
      [{ messages: [{ content: "  " }] }, Code.InvalidArgument, /empty/],
      [{ prompt: "x".repeat(100_001) }, Code.InvalidArgument, /at most 100000 characters/],
    ];
    for (const [request, code, message] of cases) {
      const error = await failureOf(ai().query(request));
      expect([error.code, error.rawMessage], JSON.stringify(request).slice(0, 80)).toEqual([code, expect.stringMatching(message)]);
      const streamed = await failureOf(async () => {
        for await (const _ of ai("connect").queryStream(request)) void _;
      });
      expect(streamed.code).toBe(code);
    }
    // 10 MiB is over the transport's message limit (PORTCULLIS_MAX_MESSAGE_BYTES): refused before it is read whole.
    expect((await failureOf(ai("connect").query({ prompt: "y".repeat(10 * 1024 * 1024) }))).code).toBe(Code.ResourceExhausted);
    expect(fakes.openai.completions().length + fakes.anthropic.completions().length).toBe(before);
  });

  it("max_tokens above the server's cap is lowered to it (10^9 → PORTCULLIS_AI_MAX_TOKENS)", async () => {
    await ai().query({ provider: "anthropic", prompt: "big", maxTokens: 1_000_000_000 });
    expect(fakes.anthropic.completions().at(-1)!.body).toMatchObject({ max_tokens: 2048 });
  });

  it("a conversation is sent in order with roles", async () => {
    await ai().query({ provider: "openai", messages: [{ content: "one" }, { role: 2, content: "two" }, { role: 1, content: "three" }] });
    expect(fakes.openai.completions().at(-1)!.body!["messages"]).toEqual([
      { role: "user", content: "one" },
      { role: "assistant", content: "two" },
      { role: "user", content: "three" },
    ]);
  });

  it("ListModels lists configured models and what an openai-kind provider reports, by provider then id", async () => {
    // gpt-fake-mini is not configured: the fake reports it at /v1/models, which the periodic probe reads.
    await expect.poll(async () => (await ai().listModels({ provider: "openai" })).models.map((m) => m.id), { timeout: 5_000 }).toEqual(["gpt-fake", "gpt-fake-mini"]);
    const all = (await ai().listModels({})).models;
    expect(all.map((m) => m.provider)).toEqual([...all.map((m) => m.provider)].sort());
    expect(all.find((m) => m.provider === "anthropic" && m.id === "claude-fake")).toMatchObject({ isDefault: true, capabilities: [1, 2, 3] });
    expect((await failureOf(ai().listModels({ provider: "nope" }))).code).toBe(Code.NotFound);
    expect((await ai().query({ provider: "openai", model: "gpt-fake-mini", prompt: "mini" })).model).toBe("gpt-fake-mini");
  });

  it("GetStatus reports version, uptime and each provider's probed health and latency", async () => {
    await expect.poll(async () => (await ai().getStatus({})).providers.find((p) => p.name === "down")?.health, { timeout: 5_000 }).toBe(HealthState.UNHEALTHY);
    const status = await ai().getStatus({});
    expect(status.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Number(status.uptime?.seconds ?? 0n) * 1000 + (status.uptime?.nanos ?? 0) / 1e6).toBeGreaterThan(0);
    const byName = new Map(status.providers.map((p) => [p.name, p]));
    expect(byName.get("openai")).toMatchObject({ health: HealthState.HEALTHY, isDefault: true, defaultModel: "gpt-fake" });
    expect(byName.get("openai")!.checkedAt).toBeDefined();
    expect(byName.get("down")).toMatchObject({ health: HealthState.UNHEALTHY, detail: "the provider cannot be reached", isDefault: false });
    expect(byName.get("keyless")!.detail).toMatch(/has no credential/);
    expect(status.ttsEngine?.health).toBe(HealthState.UNSPECIFIED);
  });

  it("each query is audited with provider, model, tokens and outcome, never the prompt or the answer", async () => {
    await ai().query({ provider: "anthropic", prompt: "secret-plan-zebra" });
    const events = await gw.auditEvents("ai.query");
    const mine = events.filter((e) => (e["metadata"] as Record<string, unknown>)["provider"] === "anthropic" && e["outcome"] === "success");
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.at(-1)!["metadata"]).toMatchObject({ provider: "anthropic", model: "claude-fake", input_tokens: 7, output_tokens: 5, finish_reason: "stop", usage_estimated: false });
    expect(JSON.stringify(events)).not.toMatch(/secret-plan-zebra|fake provider\./);
    expect(events.some((e) => e["outcome"] !== "success" && typeof e["reason"] === "string")).toBe(true);
  });
});
