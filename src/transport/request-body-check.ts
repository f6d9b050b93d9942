import { fromBinary, fromJsonString, type DescMessage, type DescMethod, type JsonReadOptions } from "@bufbuild/protobuf";
import { isFieldError } from "@bufbuild/protobuf/reflect";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressedFlag, type Compression } from "@connectrpc/connect/protocol";
import * as connectProtocol from "@connectrpc/connect/protocol-connect";
import * as grpcProtocol from "@connectrpc/connect/protocol-grpc";
import * as grpcWebProtocol from "@connectrpc/connect/protocol-grpc-web";

/** How connect-es will read a request's body: framing, message encoding, declared compression. */
export interface BodyFormat {
  /** gRPC, gRPC-Web and Connect streams carry 5-byte-prefixed envelopes; a Connect unary body is one message. */
  readonly framing: "enveloped" | "whole";
  readonly binary: boolean;
  /** The compression the client declared for its messages; undefined or "identity" for none. */
  readonly encoding: string | undefined;
}

/**
 * The body format connect-es's protocol negotiation will pick for this request (the first of gRPC,
 * gRPC-Web and Connect whose content type matches), or undefined when it will refuse the request
 * without reading a body (unsupported media type).
 */
export function bodyFormatOf(header: Headers, method: DescMethod): BodyFormat | undefined {
  const contentType = header.get("content-type") ?? "";
  const grpc = grpcProtocol.parseContentType(contentType);
  if (grpc !== undefined) return { framing: "enveloped", binary: grpc.binary, encoding: header.get(grpcProtocol.headerEncoding) ?? undefined };
  const grpcWeb = grpcWebProtocol.parseContentType(contentType);
  if (grpcWeb !== undefined) {
    return grpcWeb.text ? undefined : { framing: "enveloped", binary: grpcWeb.binary, encoding: header.get(grpcWebProtocol.headerEncoding) ?? undefined };
  }
  const connect = connectProtocol.parseContentType(contentType);
  if (connect === undefined || connect.stream !== (method.methodKind !== "unary")) return undefined;
  return connect.stream
    ? { framing: "enveloped", binary: connect.binary, encoding: header.get(connectProtocol.headerStreamEncoding) ?? undefined }
    : { framing: "whole", binary: connect.binary, encoding: header.get(connectProtocol.headerUnaryEncoding) ?? undefined };
}

export interface BodyCheck {
  readonly input: DescMessage;
  readonly format: BodyFormat;
  /** The per-message limit connect-es applies (before and after decompression). */
  readonly readMaxBytes: number;
  /** A whole body's declared length (Content-Length), when it has one. */
  readonly declaredBytes?: number;
  /** The same JSON options connect-es parses with. */
  readonly jsonOptions: Partial<JsonReadOptions>;
  /** The compressions the server accepts. */
  readonly compressions: readonly Compression[];
  /**
   * Builds the error thrown for a refused request (adds the request id; logs where needed). The body's
   * source is then left open, unread: the caller decides what becomes of the rest of the request.
   */
  readonly reject: (code: Code, message: string) => ConnectError;
}

export const ENVELOPE_HEADER_BYTES = 5;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Passes an enveloped request body through unchanged, checking each message in it before connect-es sees
 * the bytes that complete it: reserved envelope flag bits, decompression and parsing. The first bad
 * message ends the body with `check.reject(INVALID_ARGUMENT, …)`, which connect-es answers in the call's
 * protocol. (A unary call's body, read whole, is checked by checkedUnaryBody.)
 *
 * connect-es would find most of these errors itself, but it answers them as INTERNAL with the parser's
 * own words ("parse binary: premature EOF") and, for unary calls, before any interceptor has run —
 * no request id, no log line. It also accepts envelopes with reserved flag bits as messages. Checking
 * here costs one extra parse per message (and a second decompression of compressed ones).
 */
export async function* checkRequestBody(body: AsyncIterable<Uint8Array>, bodyCheck: BodyCheck): AsyncGenerator<Uint8Array> {
  const source = body[Symbol.asyncIterator]();
  let refused = false;
  const check: BodyCheck = {
    ...bodyCheck,
    reject: (code, message) => {
      refused = true;
      return bodyCheck.reject(code, message);
    },
  };
  try {
    yield* checkEnvelopes(source, check);
  } finally {
    // As `for await` would, the source is closed when the body is done with, unless it was refused:
    // closing a request's body destroys the request, and the transport drains a refused one instead.
    if (!refused) await source.return?.();
  }
}

async function* checkEnvelopes(source: AsyncIterator<Uint8Array>, check: BodyCheck): AsyncGenerator<Uint8Array> {
  // Bytes not yet checked, joined only once the envelope they start (or its header) is complete.
  let queued: Uint8Array[] = [];
  let queuedBytes = 0;
  let need = ENVELOPE_HEADER_BYTES;
  for (let step = await source.next(); step.done !== true; step = await source.next()) {
    const chunk = step.value;
    queued.push(chunk);
    queuedBytes += chunk.byteLength;
    if (queuedBytes >= need) {
      const pending = queued.length === 1 ? queued[0]! : Buffer.concat(queued);
      const checked = await checkCompleteEnvelopes(pending, check);
      need = checked.need;
      const rest = pending.subarray(checked.used);
      queued = rest.byteLength > 0 ? [rest] : [];
      queuedBytes = rest.byteLength;
    }
    yield chunk;
  }
  if (queuedBytes > 0) throw check.reject(Code.InvalidArgument, "request body ends inside a message frame");
}

/**
 * Checks the complete envelopes at the start of `bytes` (see checkRequestBody). Returns how many bytes
 * they take, and how many the next envelope needs in all before it can be checked.
 */
export async function checkCompleteEnvelopes(bytes: Uint8Array, check: BodyCheck): Promise<{ used: number; need: number }> {
  let offset = 0;
  while (bytes.byteLength - offset >= ENVELOPE_HEADER_BYTES) {
    const flags = bytes[offset]!;
    const length = envelopeLength(bytes, offset, check);
    if (bytes.byteLength - offset < ENVELOPE_HEADER_BYTES + length) return { used: offset, need: ENVELOPE_HEADER_BYTES + length };
    const start = offset + ENVELOPE_HEADER_BYTES;
    await checkMessage(bytes.subarray(start, start + length), (flags & compressedFlag) === compressedFlag, check);
    offset = start + length;
  }
  return { used: offset, need: ENVELOPE_HEADER_BYTES };
}

/** The length of the envelope whose 5-byte header starts at `offset`; throws for reserved flags or a length past the limit. */
export function envelopeLength(bytes: Uint8Array, offset: number, check: BodyCheck): number {
  const flags = bytes[offset]!;
  const length = new DataView(bytes.buffer, bytes.byteOffset + offset + 1, 4).getUint32(0);
  if ((flags & ~compressedFlag) !== 0) {
    throw check.reject(Code.InvalidArgument, `invalid message frame: reserved flag bits set (0x${flags.toString(16).padStart(2, "0")})`);
  }
  if (length > check.readMaxBytes) {
    throw check.reject(Code.ResourceExhausted, `request message of ${length} bytes is larger than the limit of ${check.readMaxBytes}`);
  }
  return length;
}

export async function checkMessage(bytes: Uint8Array, compressed: boolean, check: BodyCheck): Promise<void> {
  let message = bytes;
  if (compressed) {
    const { encoding } = check.format;
    if (encoding === undefined || encoding === "identity") {
      throw check.reject(Code.InvalidArgument, "invalid message frame: compressed, but the request declares no compression");
    }
    const compression = check.compressions.find((c) => c.name === encoding);
    if (compression === undefined) return; // connect-es refuses the unsupported encoding itself
    try {
      message = await compression.decompress(bytes, check.readMaxBytes);
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.ResourceExhausted) throw check.reject(Code.ResourceExhausted, error.rawMessage);
      throw check.reject(Code.InvalidArgument, `request message is not valid ${encoding} data`);
    }
  }
  const { input } = check;
  if (check.format.binary) {
    try {
      fromBinary(input, message);
    } catch {
      // The parser's words ("premature EOF", "invalid wire type 7") describe its internals, not the request.
      throw check.reject(Code.InvalidArgument, `request message is not a valid ${input.typeName} in the protobuf binary format`);
    }
    return;
  }
  // `{}` is every message's empty value (WhoAmI, GetJwks, ListModels…): nothing to parse.
  if (message.byteLength === 2 && message[0] === 0x7b && message[1] === 0x7d) return;
  let text: string;
  try {
    text = strictUtf8.decode(message);
  } catch {
    throw check.reject(Code.InvalidArgument, "request message is not valid UTF-8");
  }
  try {
    fromJsonString(input, text, check.jsonOptions);
  } catch (error) {
    throw check.reject(Code.InvalidArgument, describeJsonProblem(input, error));
  }
}

const UNKNOWN_KEY = /^cannot decode message (\S+) from JSON: key "([A-Za-z0-9_@.-]{1,64})" is unknown$/;
const BAD_ENUM = /^cannot decode enum (\S+) from JSON: /;

/**
 * What is wrong with a JSON request, named by schema only: protobuf-es's messages quote the offending
 * value (which may be a secret sent in the wrong field) or, for syntax errors, a slice of the body.
 */
function describeJsonProblem(input: DescMessage, error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof SyntaxError) return "request message is not valid JSON";
  if (isFieldError(cause)) {
    const field = cause.field();
    const name = field.kind === "field" ? field.jsonName : field.name;
    return `invalid value for field "${name}" of ${field.parent.typeName}`;
  }
  const message = error instanceof Error ? error.message : "";
  const unknown = UNKNOWN_KEY.exec(message);
  if (unknown !== null) return `unknown field "${unknown[2]}" in ${unknown[1]}`;
  const badEnum = BAD_ENUM.exec(message);
  if (badEnum !== null) return `unknown value for enum ${badEnum[1]} in ${input.typeName}`;
  return `request message is not a valid ${input.typeName} in JSON`;
}
