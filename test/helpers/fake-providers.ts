import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Fake AI providers for tests and benchmarks: real HTTP servers on 127.0.0.1 speaking the OpenAI
 * chat-completions and Anthropic Messages wire formats (server-sent events, usage in the final events,
 * `GET …/models`). Each checks the credential header it receives (401 with a body echoing what it got,
 * as real providers do — which the gateway must never pass on), can hold a stream open between chunks,
 * fail in every error class, and notices when the client disconnects mid-answer.
 */
export type FakeKind = "openai" | "anthropic";

/** What the fake does with the next completion request. */
export type Behaviour =
  | {
      readonly kind: "answer";
      readonly words?: readonly string[];
      readonly usage?: { readonly input: number; readonly output: number };
      /** The provider's own finish/stop reason (default "stop" / "end_turn"). */
      readonly finish?: string;
      /** Send the first delta, then wait for `release()` before the rest. */
      readonly hold?: boolean;
      /** Pause between deltas. */
      readonly delayMs?: number;
      /** Pause between the answer's last event and the end of the response body. */
      readonly lingerMs?: number;
    }
  | { readonly kind: "status"; readonly status: number; readonly headers?: Readonly<Record<string, string>> }
  /** Accept the request and never answer. */
  | { readonly kind: "hang" }
  /** Start a stream, then send an event that is not JSON. */
  | { readonly kind: "malformed" }
  /** Start a stream, send one delta, then cut the connection. */
  | { readonly kind: "cut" }
  /** Start a stream, send one delta, then the provider's own error event (overloaded). */
  | { readonly kind: "error-event" };

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: Record<string, unknown> | undefined;
}

export interface FakeProvider {
  readonly kind: FakeKind;
  /** The `baseUrl` to configure: with `/v1` for OpenAI (its convention), the bare origin for Anthropic. */
  readonly baseUrl: string;
  readonly port: number;
  /** The key the fake accepts; anything else is answered 401 with the presented key echoed in the body. */
  apiKey: string;
  models: string[];
  readonly requests: RecordedRequest[];
  /** Completion requests whose client went away before the answer ended. */
  readonly disconnects: number;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Whether the last delta of a held answer has been sent. */
  readonly sentLast: boolean;
  enqueue(...behaviours: Behaviour[]): void;
  /** Lets a held answer continue. */
  release(): void;
  /** Resolves at the next client disconnect. */
  nextDisconnect(): Promise<void>;
  completions(): RecordedRequest[];
  close(): Promise<void>;
}

const DEFAULT_WORDS = ["Hello", " from", " the", " fake", " provider."];

/**
 * `wordsFromMaxTokens`: with nothing enqueued, answer with as many one-word deltas as the request's
 * max_tokens (for a fake in another process, which nobody can script: the benchmark's), `delayMs` apart.
 */
export async function startFakeProvider(kind: FakeKind, options: { apiKey: string; models?: string[]; wordsFromMaxTokens?: boolean; delayMs?: number }): Promise<FakeProvider> {
  const queue: Behaviour[] = [];
  const requests: RecordedRequest[] = [];
  let disconnects = 0;
  let connections = 0;
  let sentLast = true;
  let releaseHeld: (() => void) | undefined;
  let held: Promise<void> | undefined;
  const disconnectWaiters: Array<() => void> = [];
  const sockets = new Set<import("node:net").Socket>();

  const fake: FakeProvider = {
    kind,
    baseUrl: "",
    port: 0,
    apiKey: options.apiKey,
    models: options.models ?? (kind === "openai" ? ["gpt-fake", "gpt-fake-mini"] : ["claude-fake"]),
    requests,
    get disconnects() {
      return disconnects;
    },
    get connections() {
      return connections;
    },
    get sentLast() {
      return sentLast;
    },
    enqueue: (...behaviours) => void queue.push(...behaviours),
    release() {
      releaseHeld?.();
    },
    nextDisconnect: () => new Promise((resolve) => disconnectWaiters.push(resolve)),
    completions: () => requests.filter((r) => r.method === "POST"),
    close: () =>
      new Promise((resolve) => {
        releaseHeld?.();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const presentedKey = (req: IncomingMessage): string => {
    if (kind === "anthropic") return String(req.headers["x-api-key"] ?? "");
    const auth = String(req.headers["authorization"] ?? "");
    return auth.startsWith("Bearer ") ? auth.slice(7) : "";
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  const server: Server = createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (raw += chunk));
    req.on("end", () => {
      let body: Record<string, unknown> | undefined;
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
      const path = (req.url ?? "").split("?")[0]!;
      requests.push({ method: req.method ?? "", path, headers: req.headers, body });
      const key = presentedKey(req);
      if (key !== fake.apiKey) {
        // As real providers do: the refusal names the key it got. The gateway must never pass this on.
        json(
          res,
          401,
          kind === "openai"
            ? { error: { message: `Incorrect API key provided: ${key}`, type: "invalid_request_error" } }
            : { type: "error", error: { type: "authentication_error", message: `invalid x-api-key ${key}` } },
        );
        return;
      }
      if (req.method === "GET" && path === "/v1/models") {
        json(res, 200, { data: fake.models.map((id) => ({ id, object: "model" })) });
        return;
      }
      const completionPath = kind === "openai" ? "/v1/chat/completions" : "/v1/messages";
      if (req.method !== "POST" || path !== completionPath || !body) {
        json(res, 404, { error: { message: "not found" } });
        return;
      }
      void answer(req, res, body, queue.shift() ?? defaultAnswer(body));
    });
  });

  const defaultAnswer = (body: Record<string, unknown>): Behaviour => {
    const n = Number(body["max_tokens"]);
    if (!options.wordsFromMaxTokens || !Number.isInteger(n) || n < 1) return { kind: "answer" };
    return {
      kind: "answer",
      words: Array.from({ length: Math.min(n, 100_000) }, (_, i) => (i === 0 ? "w" : " w")),
      usage: { input: 1, output: n },
      ...(options.delayMs ? { delayMs: options.delayMs } : {}),
    };
  };

  const answer = async (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, behaviour: Behaviour) => {
    if (behaviour.kind === "status") {
      json(res, behaviour.status, { error: { message: `failure ${behaviour.status} for key ${fake.apiKey}` } }, { ...behaviour.headers });
      return;
    }
    let ended = false;
    res.on("close", () => {
      if (!ended) {
        disconnects++;
        for (const resolve of disconnectWaiters.splice(0)) resolve();
      }
    });
    if (behaviour.kind === "hang") return;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const send = (event: string | undefined, data: unknown) => res.write(`${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
    const model = String(body["model"]);
    const words = behaviour.kind === "answer" ? (behaviour.words ?? DEFAULT_WORDS) : [];
    const usage = (behaviour.kind === "answer" ? behaviour.usage : undefined) ?? { input: 7, output: words.length };
    if (kind === "anthropic") {
      send("message_start", { type: "message_start", message: { id: "msg_fake", type: "message", role: "assistant", model, content: [], usage: { input_tokens: usage.input, output_tokens: 1 } } });
      send("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
      send("ping", { type: "ping" });
    } else {
      send(undefined, { id: "chatcmpl-fake", object: "chat.completion.chunk", model, choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
    }
    const delta = (text: string) =>
      kind === "openai"
        ? send(undefined, { id: "chatcmpl-fake", object: "chat.completion.chunk", model, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })
        : send("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
    if (behaviour.kind === "malformed") {
      send(kind === "openai" ? undefined : "content_block_delta", "{this is not json");
      ended = true;
      res.end();
      return;
    }
    if (behaviour.kind === "error-event") {
      delta("partial");
      if (kind === "openai") send(undefined, { error: { message: `overloaded (key ${fake.apiKey})`, type: "server_error" } });
      else send("error", { type: "error", error: { type: "overloaded_error", message: `Overloaded (key ${fake.apiKey})` } });
      ended = true;
      res.end();
      return;
    }
    if (behaviour.kind === "cut") {
      delta("partial");
      await new Promise((resolve) => setTimeout(resolve, 20));
      ended = true;
      req.socket.destroy();
      return;
    }
    sentLast = false;
    for (let i = 0; i < words.length; i++) {
      if (res.destroyed) return;
      delta(words[i]!);
      if (i === 0 && behaviour.hold) {
        held = new Promise<void>((resolve) => (releaseHeld = resolve));
        await held;
        releaseHeld = undefined;
      } else if (behaviour.delayMs) {
        await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
      }
    }
    if (res.destroyed) return;
    sentLast = true;
    if (kind === "openai") {
      send(undefined, { id: "chatcmpl-fake", object: "chat.completion.chunk", model, choices: [{ index: 0, delta: {}, finish_reason: behaviour.finish ?? "stop" }] });
      const streamOptions = body["stream_options"] as { include_usage?: boolean } | undefined;
      if (streamOptions?.include_usage)
        send(undefined, {
          id: "chatcmpl-fake",
          object: "chat.completion.chunk",
          model,
          choices: [],
          usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output },
        });
      send(undefined, "[DONE]");
    } else {
      send("content_block_stop", { type: "content_block_stop", index: 0 });
      send("message_delta", { type: "message_delta", delta: { stop_reason: behaviour.finish ?? "end_turn", stop_sequence: null }, usage: { output_tokens: usage.output } });
      send("message_stop", { type: "message_stop" });
    }
    if (behaviour.lingerMs) await new Promise((resolve) => setTimeout(resolve, behaviour.lingerMs));
    ended = true;
    res.end();
  };

  server.on("connection", (socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(fake, { port, baseUrl: kind === "openai" ? `http://127.0.0.1:${port}/v1` : `http://127.0.0.1:${port}` });
  return fake;
}
