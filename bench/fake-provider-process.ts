// A fake OpenAI-compatible provider in a process of its own, for the ai benchmark: the provider's work
// then runs on its own event loop, as a real provider's would, instead of sharing the load generator's.
// Prints `{"baseUrl": …}` once listening; answers each completion with max_tokens one-word deltas; stops
// on SIGTERM (BENCH_FAKE_DELAY_MS apart, if set). The API key comes from the environment (BENCH_FAKE_API_KEY), never from the command line.
import { startFakeProvider } from "../test/helpers/fake-providers.ts";

const apiKey = process.env["BENCH_FAKE_API_KEY"];
if (!apiKey) throw new Error("BENCH_FAKE_API_KEY is required");
const delayMs = Number(process.env["BENCH_FAKE_DELAY_MS"] ?? 0);
const fake = await startFakeProvider("openai", { apiKey, wordsFromMaxTokens: true, delayMs });
process.stdout.write(`${JSON.stringify({ baseUrl: fake.baseUrl })}\n`);
process.once("SIGTERM", () => {
  void fake.close().then(() => process.exit(0));
});
