import { CommandError } from "../command-error.ts";

/** The server's default host and port (PORTCULLIS_HOST, PORTCULLIS_PORT). */
export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:50051";

/**
 * Checks and normalises a gateway URL (`http://host:port` or `https://…`, optionally with a path prefix
 * when the gateway sits behind a proxy): no trailing slash, so that two spellings of one gateway compare
 * equal. User information in the URL is refused: it would be a credential in shell history.
 */
export function normalizeGatewayUrl(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new CommandError(`${source} is not a URL (expected e.g. ${DEFAULT_GATEWAY_URL})`, 2);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CommandError(`${source} must be an http:// or https:// URL`, 2);
  if (url.username !== "" || url.password !== "") throw new CommandError(`${source} must not contain a user name or password`, 2);
  if (url.search !== "" || url.hash !== "") throw new CommandError(`${source} must not contain a query or fragment`, 2);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}
