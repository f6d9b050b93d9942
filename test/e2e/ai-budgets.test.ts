import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { Code, errorInfo, failureOf, startAiGateway, startFakes, storeFakeCredentials, tokenFor } from "../helpers/ai-gateway.ts";
import { testDatabaseName } from "../helpers/database.ts";
import type { FakeKind, FakeProvider } from "../helpers/fake-providers.ts";
import type { IdentityServer } from "../helpers/identity-server.ts";

const WITHIN_A_SECOND = { timeout: 1_000, interval: 50 };

/** Token budgets per API key, across two gateway instances sharing one database; usage per key and user. */
describe("AI token budgets and usage", () => {
  const dbName = testDatabaseName(import.meta.url);
  let a: IdentityServer;
  let b: IdentityServer;
  let fakes: Record<FakeKind, FakeProvider>;
  let userToken = "";
  const keys = () => a.client(ApiKeyService, { token: userToken });
  const queryWith = (gw: IdentityServer, key: string, maxTokens = 20) => gw.client(AiService, { token: key }).query({ provider: "openai", prompt: "q", maxTokens });
  // A realistic answer: the provider never writes more than max_tokens.
  const costing = (input: number, output: number) => ({ kind: "answer" as const, words: Array.from({ length: output }, () => "w "), usage: { input, output } });

  beforeAll(async () => {
    fakes = await startFakes();
    a = await startAiGateway(dbName, fakes);
    b = await startAiGateway(dbName, fakes);
    await storeFakeCredentials(a, await tokenFor(a, "oona", "owner"), fakes);
    userToken = await tokenFor(a, "bert", "user");
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await fakes?.openai.close();
    await fakes?.anthropic.close();
  });

  it("a spent daily budget refuses the next query on every instance, until UpdateApiKey raises it", async () => {
    const { apiKey, secret } = await keys().createApiKey({ name: "budgeted", scopes: ["ai.query"], dailyTokenBudget: 30n });
    expect(apiKey!.dailyTokenBudget).toBe(30n);
    fakes.openai.enqueue(costing(10, 10), costing(10, 10));
    await queryWith(a, secret);
    await queryWith(a, secret); // 20 spent < 30: still admitted
    for (const gw of [b, a]) {
      const refused = await failureOf(queryWith(gw, secret));
      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.rawMessage).toMatch(/daily token budget \(30\) is spent; it resets at \d{4}-\d\d-\d\dT00:00:00\.000Z/);
      const info = errorInfo(refused)!;
      expect(info.reason).toBe(ErrorReason.BUDGET_EXCEEDED);
      expect(Number(info.retryAfterMs)).toBeGreaterThan(0);
      expect(Number(info.retryAfterMs)).toBeLessThanOrEqual(86_400_000);
    }
    // A stream is refused before its first message.
    const received: unknown[] = [];
    const streamed = await failureOf(async () => {
      for await (const m of b.client(AiService, { token: secret, protocol: "connect" }).queryStream({ provider: "openai", prompt: "q" })) received.push(m);
    });
    expect([streamed.code, errorInfo(streamed)?.reason, received]).toEqual([Code.ResourceExhausted, ErrorReason.BUDGET_EXCEEDED, []]);
    const seen = (await keys().getApiKey({ keyId: apiKey!.id })).apiKey!;
    expect(seen).toMatchObject({ dailyTokensSpent: 40n, monthlyTokensSpent: 40n, aiQueryCount: 2n, inputTokens: 20n, outputTokens: 20n });

    await keys().updateApiKey({ keyId: apiKey!.id, dailyTokenBudget: 100n });
    fakes.openai.enqueue(costing(10, 10));
    await expect
      .poll(
        () =>
          queryWith(b, secret).then(
            () => "answered",
            (e: unknown) => String(e),
          ),
        WITHIN_A_SECOND,
      )
      .toBe("answered");
    expect((await keys().getApiKey({ keyId: apiKey!.id })).apiKey!.dailyTokensSpent).toBe(60n);

    await keys().updateApiKey({ keyId: apiKey!.id, dailyTokenBudget: 0n });
    expect((await keys().getApiKey({ keyId: apiKey!.id })).apiKey!.dailyTokenBudget).toBeUndefined();
  });

  it("a monthly budget is enforced the same way", async () => {
    const { secret } = await keys().createApiKey({ name: "monthly", scopes: ["ai.query"], monthlyTokenBudget: 15n });
    fakes.openai.enqueue(costing(5, 10));
    await queryWith(a, secret);
    const refused = await failureOf(queryWith(b, secret));
    expect([refused.code, errorInfo(refused)?.reason]).toEqual([Code.ResourceExhausted, ErrorReason.BUDGET_EXCEEDED]);
    expect(refused.rawMessage).toMatch(/monthly token budget \(15\)/);
  });

  it("concurrent queries of one key on one instance overshoot the budget by at most one query", async () => {
    const { apiKey, secret } = await keys().createApiKey({ name: "concurrent", scopes: ["ai.query", "keys.read"], dailyTokenBudget: 60n });
    // Each query reserves 1 (prompt) + 20 (max_tokens) and costs 21: two fit at once, the third waits and
    // starts alone once the spend is 42, the last two find 63 spent.
    // Only the three admitted queries reach the provider.
    for (let i = 0; i < 3; i++) fakes.openai.enqueue({ ...costing(1, 20), delayMs: 5 });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => queryWith(a, secret, 20)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === "rejected")) expect(errorInfo(failureFrom(r.reason))?.reason).toBe(ErrorReason.BUDGET_EXCEEDED);
    expect((await keys().getApiKey({ keyId: apiKey!.id })).apiKey!.dailyTokensSpent).toBe(63n);
  });

  it("bad budgets are INVALID_ARGUMENT", async () => {
    expect((await failureOf(keys().createApiKey({ name: "zero", scopes: ["ai.query"], dailyTokenBudget: 0n }))).code).toBe(Code.InvalidArgument);
    expect((await failureOf(keys().createApiKey({ name: "negative", scopes: ["ai.query"], monthlyTokenBudget: -5n }))).code).toBe(Code.InvalidArgument);
    const { apiKey } = await keys().createApiKey({ name: "fine", scopes: ["ai.query"] });
    expect((await failureOf(keys().updateApiKey({ keyId: apiKey!.id, dailyTokenBudget: -1n }))).code).toBe(Code.InvalidArgument);
  });

  it("queries are counted per key and per user over both instances, in GetApiKeyStats", async () => {
    const { apiKey, secret } = await keys().createApiKey({ name: "counted", scopes: ["ai.query"] });
    const before = await keys().getApiKeyStats({});
    fakes.openai.enqueue(costing(3, 4), costing(5, 6));
    await queryWith(a, secret);
    await queryWith(b, secret);
    // The user's own session counts for the user too.
    fakes.openai.enqueue(costing(1, 2));
    await a.client(AiService, { token: userToken }).query({ provider: "openai", prompt: "mine" });
    // Unbudgeted costs are written just after the answer: another instance sees them a moment later.
    await expect.poll(async () => (await keys().getApiKeyStats({})).aiQueryCount - before.aiQueryCount, { timeout: 5_000 }).toBe(3n);
    const after = await keys().getApiKeyStats({});
    expect(after.inputTokens - before.inputTokens).toBe(9n);
    expect(after.outputTokens - before.outputTokens).toBe(12n);
    expect(after.meanQueryLatencyMs).toBeGreaterThanOrEqual(0n);
    await expect
      .poll(async () => (await keys().getApiKey({ keyId: apiKey!.id })).apiKey, { timeout: 5_000 })
      .toMatchObject({ aiQueryCount: 2n, inputTokens: 8n, outputTokens: 10n, meanQueryLatencyMs: expect.any(BigInt) });
  });
});

function failureFrom(reason: unknown) {
  return reason as import("@connectrpc/connect").ConnectError;
}
