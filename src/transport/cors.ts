import type { IncomingHttpHeaders } from "node:http";
import { cors } from "@connectrpc/connect";

/** Response headers for a browser request from an allowed origin; empty for any other origin. */
export function corsHeaders(allowedOrigins: readonly string[], requestHeaders: IncomingHttpHeaders): Record<string, string> {
  const origin = requestHeaders.origin;
  if (typeof origin !== "string" || !allowedOrigins.includes(origin)) return {};
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-methods": cors.allowedMethods.join(", "),
    "access-control-allow-headers": [...cors.allowedHeaders, "authorization", "x-api-key", "x-mfa-code", "x-request-id"].join(", "),
    "access-control-expose-headers": [...cors.exposedHeaders, "x-request-id"].join(", "),
    "access-control-max-age": "7200",
    vary: "origin",
  };
}
