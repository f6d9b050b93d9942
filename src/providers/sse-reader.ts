import { ProviderError } from "../domain/ai/chat-provider.ts";

/** One server-sent event: its `event:` name ("message" when none was given) and its joined `data:` lines. */
export interface ServerSentEvent {
  readonly event: string;
  readonly data: string;
}

// An event larger than this is not a chat delta: treat it as a broken stream rather than buffer forever.
const MAX_EVENT_BYTES = 1024 * 1024;

/** Every event, one at a time (see {@link readServerSentEventBatches}). */
export async function* readServerSentEvents(body: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<ServerSentEvent> {
  for await (const batch of readServerSentEventBatches(body)) yield* batch;
}

/**
 * Parses a `text/event-stream` body (the WHATWG rules: lines end in LF, CRLF or CR; `data:` lines of one
 * event are joined with LF; an empty line dispatches; comment lines start with `:`) and yields, for each
 * chunk read, the events it completed — as soon as the chunk arrives, so no event waits for more bytes.
 * Events that arrived together stay together: an adapter can forward them as one delta, which is what
 * keeps a fast provider's stream cheap to relay (one message per read, not per token) without delaying
 * any of them.
 */
export async function* readServerSentEventBatches(body: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<ServerSentEvent[]> {
  const decoder = new TextDecoder("utf-8");
  let pending = "";
  let event = "";
  let data: string[] = [];
  let size = 0;
  let skipLeadingLf = false;
  for await (const chunk of body) {
    const batch: ServerSentEvent[] = [];
    pending += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let i = 0; i < pending.length; i++) {
      const c = pending.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (skipLeadingLf && c === 10 && i === start) {
        // the LF of a CRLF whose CR ended the previous chunk's last line
        skipLeadingLf = false;
        start = i + 1;
        continue;
      }
      skipLeadingLf = false;
      const line = pending.slice(start, i);
      if (c === 13) {
        if (i + 1 < pending.length) {
          if (pending.charCodeAt(i + 1) === 10) i++;
        } else {
          skipLeadingLf = true;
        }
      }
      start = i + 1;
      if (line === "") {
        if (data.length > 0) batch.push({ event: event || "message", data: data.join("\n") });
        event = "";
        data = [];
        size = 0;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") {
        data.push(value);
        size += value.length;
      } else if (field === "event") {
        event = value;
      }
    }
    pending = pending.slice(start);
    if (batch.length > 0) yield batch;
    if (size + pending.length > MAX_EVENT_BYTES) throw new ProviderError("malformed", "event stream: an event exceeds 1 MiB");
  }
  pending += decoder.decode();
  // A final event without its blank line is dispatched only if complete; a cut-off line is dropped.
  if (data.length > 0 && pending === "") yield [{ event: event || "message", data: data.join("\n") }];
}
