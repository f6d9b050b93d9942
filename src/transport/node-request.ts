import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import type { universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { credentialHeadersKey } from "../handlers/context-keys.ts";

/** The Node request and response types the gateway serves (http and http2). */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = Parameters<typeof universalResponseToNodeResponse>[1];

/**
 * The request connect-es handles, built from a Node request: what connect-node's
 * `universalRequestFromNodeRequest` builds, with one difference that matters on the hot path. Its
 * signal is aborted only when the call did not end normally — the client went away before the response
 * was complete (an HTTP/2 reset carries its mapped code: CANCEL is CANCELED, REFUSED_STREAM
 * UNAVAILABLE…), or an HTTP/1.1 request failed. connect-node aborts it when every response closes,
 * finished or not, and an abort without a reason builds a DOMException with a stack trace: about 3 % of
 * a small call's CPU, spent after the call is over, when nothing listens any more (connect-es has
 * already aborted the call's own context by then).
 *
 * The credential fields (`authorization`, `x-api-key`) are not put in its Headers but in the context
 * (`credentialHeadersKey`), checked and trimmed as Headers would: see there why.
 *
 * `body` is what connect-es reads (the Node request itself, or a checked view of it).
 */
export function universalRequestOf(req: NodeRequest, res: NodeResponse, body: AsyncIterable<Uint8Array>, contextValues: ContextValues): UniversalServerRequest {
  const abort = new AbortController();
  if ("stream" in req) {
    req.once("close", () => {
      if (res.writableEnded) return;
      const error = connectErrorFromH2ResetCode(req.stream.rstCode);
      if (error !== undefined) abort.abort(error);
      else abort.abort();
    });
  } else {
    // HTTP/1.1 has no error codes, but Node reports ECONNRESET and the like. The response's close is
    // the one to follow: the request closes as soon as its body has been read.
    const onError = (error: unknown) => {
      req.off("error", onError);
      res.off("close", onClose);
      abort.abort(connectErrorFromNodeReason(error));
    };
    const onClose = () => {
      req.off("error", onError);
      if (req.errored) abort.abort(connectErrorFromNodeReason(req.errored));
      else if (!res.writableEnded) abort.abort();
    };
    req.once("error", onError);
    res.once("close", onClose);
  }
  return {
    httpVersion: req.httpVersion,
    method: req.method ?? "",
    url: urlOf(req),
    header: webHeaders(req.headers, contextValues),
    body,
    signal: abort.signal,
    contextValues,
  };
}

// Absolute URLs of recent calls, by scheme, authority and path: the same few on every call of a
// client, and `new URL` (which normalises them) costs more than the lookup. Bounded; cleared when full.
const URL_CACHE_LIMIT = 1_000;
const urls = new Map<string, string>();

/**
 * The request's absolute URL as connect-node gives it (`new URL(path, scheme://authority)`), which
 * throws ConnectError INVALID_ARGUMENT for an authority no URL can hold (connect-node throws a TypeError).
 */
function urlOf(req: NodeRequest): string {
  const encrypted = "encrypted" in req.socket && req.socket.encrypted === true;
  const authority = "authority" in req ? req.authority : req.headers.host;
  if (authority === undefined) throw new ConnectError("unable to determine request authority from Node.js server request", Code.InvalidArgument);
  const path = req.url ?? "";
  const key = `${encrypted ? "https" : "http"}://${authority}`;
  const cached = path.includes("?") ? undefined : urls.get(key + path);
  if (cached !== undefined) return cached;
  let url: string;
  try {
    url = new URL(path, key).toString();
  } catch {
    throw new ConnectError("the request's authority is not a valid host", Code.InvalidArgument);
  }
  if (!path.includes("?")) {
    if (urls.size >= URL_CACHE_LIMIT) urls.clear();
    urls.set(key + path, url);
  }
  return url;
}

/**
 * A Node header object as fetch Headers, without HTTP/2 pseudo-headers (as connect-node converts it),
 * and without the credential fields, which go to the context.
 */
function webHeaders(nodeHeaders: http.IncomingHttpHeaders, contextValues: ContextValues): Headers {
  const header = new Headers();
  let authorization: string | undefined;
  let apiKey: string | undefined;
  for (const name in nodeHeaders) {
    if (name.charCodeAt(0) === 0x3a) continue; // ":"
    const value = nodeHeaders[name];
    if (value === undefined) continue;
    if (name === "authorization") authorization = headerValue(name, value);
    else if (name === "x-api-key") apiKey = headerValue(name, value);
    else if (typeof value === "string") header.append(name, value);
    else for (const one of value) header.append(name, one);
  }
  contextValues.set(credentialHeadersKey, { authorization, apiKey });
  return header;
}

// Characters fetch Headers refuses anywhere in a value: NUL, CR, LF, and anything past 0xff.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for.
const REFUSED_IN_VALUE = /[^\x01-\x09\x0b\x0c\x0e-\xff]/;

/**
 * A header value as fetch Headers would hold it: the same string when Headers would take it as it is
 * (the usual case, checked by one regular expression instead of Headers' character-by-character loop);
 * otherwise whatever Headers makes of it — leading and trailing whitespace trimmed — or the TypeError it
 * throws, so a value is refused exactly when Headers would refuse it. Repeated fields are joined with
 * ", " as Headers joins them.
 */
function headerValue(name: string, value: string | string[]): string {
  if (typeof value === "string") {
    const first = value.charCodeAt(0);
    const last = value.charCodeAt(value.length - 1);
    if (value.length > 0 && first !== 0x20 && first !== 0x09 && last !== 0x20 && last !== 0x09 && !REFUSED_IN_VALUE.test(value)) return value;
  }
  const header = new Headers();
  if (typeof value === "string") header.append(name, value);
  else for (const one of value) header.append(name, one);
  return header.get(name) ?? "";
}

// RFC 9113 error codes and what they mean for a call (connect-node's mapping; STREAM_CLOSED is not one).
const H2_RESET_CODES: ReadonlyMap<number, Code> = new Map([
  [0x1, Code.Internal], // PROTOCOL_ERROR
  [0x2, Code.Internal], // INTERNAL_ERROR
  [0x3, Code.Internal], // FLOW_CONTROL_ERROR
  [0x4, Code.Internal], // SETTINGS_TIMEOUT
  [0x6, Code.Internal], // FRAME_SIZE_ERROR
  [0x7, Code.Unavailable], // REFUSED_STREAM
  [0x8, Code.Canceled], // CANCEL
  [0x9, Code.Internal], // COMPRESSION_ERROR
  [0xa, Code.Internal], // CONNECT_ERROR
  [0xb, Code.ResourceExhausted], // ENHANCE_YOUR_CALM
  [0xc, Code.PermissionDenied], // INADEQUATE_SECURITY
  [0xd, Code.PermissionDenied], // HTTP_1_1_REQUIRED
]);

function connectErrorFromH2ResetCode(rstCode: number): ConnectError | undefined {
  const code = H2_RESET_CODES.get(rstCode);
  return code === undefined ? undefined : new ConnectError(`http/2 stream closed with error code 0x${rstCode.toString(16)}`, code);
}

// Node's codes for a peer that hung up: the call is ABORTED (as connect-node maps them).
const CLIENT_GONE = new Set(["ERR_STREAM_WRITE_AFTER_END", "ERR_STREAM_DESTROYED", "ERR_HTTP2_INVALID_STREAM", "ECONNRESET"]);

function connectErrorFromNodeReason(reason: unknown): ConnectError {
  const code = (reason as { code?: unknown } | undefined)?.code;
  return ConnectError.from(reason, typeof code === "string" && CLIENT_GONE.has(code) ? Code.Aborted : Code.Internal);
}
