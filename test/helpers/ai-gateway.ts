import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { ErrorInfoSchema } from "../../gen/portcullis/v1/errors_pb.js";
import { startFakeProvider, type FakeKind, type FakeProvider } from "./fake-providers.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "./identity-server.ts";
import { noteSecret } from "./secret-capture.ts";

/** A fake provider's key: recognisable, random, and registered with the whole-run secret scan. */
export function fakeProviderKey(kind: FakeKind): string {
  const key = `${kind === "openai" ? "sk-proj" : "sk-ant-api03"}-${randomBytes(18).toString("base64url")}`;
  noteSecret(key);
  return key;
}

/** Starts both fakes with fresh keys. */
export async function startFakes(): Promise<Record<FakeKind, FakeProvider>> {
  return { openai: await startFakeProvider("openai", { apiKey: fakeProviderKey("openai") }), anthropic: await startFakeProvider("anthropic", { apiKey: fakeProviderKey("anthropic") }) };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The provider configuration of the AI tests: each fake as itself, and again with a short timeout. */
export function providersFor(fakes: Record<FakeKind, FakeProvider>, extra: object[] = []): string {
  return JSON.stringify([
    { name: "openai", kind: "openai", baseUrl: fakes.openai.baseUrl, defaultModel: "gpt-fake", models: ["gpt-fake"], credential: "default", default: true, timeoutMs: 5_000 },
    { name: "anthropic", kind: "anthropic", baseUrl: fakes.anthropic.baseUrl, defaultModel: "claude-fake", credential: "default", timeoutMs: 5_000 },
    { name: "openai-hasty", kind: "openai", baseUrl: fakes.openai.baseUrl, defaultModel: "gpt-fake", credential: "default", timeoutMs: 400 },
    { name: "anthropic-hasty", kind: "anthropic", baseUrl: fakes.anthropic.baseUrl, defaultModel: "claude-fake", credential: "default", timeoutMs: 400 },
    { name: "local", kind: "local" },
    ...extra,
  ]);
}

/** Logs in (creating the account first) and returns the access token. */
export async function tokenFor(gw: IdentityServer, username: string, role: "user" | "admin" | "owner"): Promise<string> {
  await gw.createUser(username, role);
  return (await gw.client(AuthService).login({ username, password: testPassword(username) })).accessToken;
}

/** Stores each fake's key as the credential of the providers that point at it. */
export async function storeFakeCredentials(gw: IdentityServer, ownerToken: string, fakes: Record<FakeKind, FakeProvider>): Promise<void> {
  const ai = gw.client(AiService, { token: ownerToken });
  for (const name of ["openai", "openai-hasty"]) await ai.putProviderCredential({ provider: name, name: "default", secret: fakes.openai.apiKey });
  for (const name of ["anthropic", "anthropic-hasty"]) await ai.putProviderCredential({ provider: name, name: "default", secret: fakes.anthropic.apiKey });
}

export async function startAiGateway(dbName: string, fakes: Record<FakeKind, FakeProvider>, env: Record<string, string> = {}, extraProviders: object[] = []): Promise<IdentityServer> {
  return startIdentityServer({ dbName, env: { PORTCULLIS_AI_PROVIDERS: providersFor(fakes, extraProviders), PORTCULLIS_RATE_LIMIT_EXPENSIVE: "100000", ...env } });
}

/** The ConnectError a call failed with (fails the test if it succeeded). */
export async function failureOf(call: Promise<unknown> | (() => Promise<unknown>)): Promise<ConnectError> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call succeeded but was expected to fail");
}

/** The ErrorInfo detail of an error, if any. */
export function errorInfo(error: ConnectError) {
  return error.findDetails(ErrorInfoSchema)[0];
}

export { Code };
