import { ProviderError } from "../domain/ai/chat-provider.ts";

/** An event's `data` as the JSON object both wire formats send; anything else is a malformed stream. */
export function parseEventObject(data: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new ProviderError("malformed", "an event is not JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new ProviderError("malformed", "an event is not a JSON object");
  return parsed as Record<string, unknown>;
}

/** A token count as reported, or 0 for anything that is not a non-negative number. */
export function tokenCount(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.floor(value) : 0;
}
