import type { Readable } from "node:stream";
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
  /** The same JSON options connect-es parses with. */
  readonly jsonOptions: Partial<JsonReadOptions>;
  /** The compressions the server accepts. */
  readonly compressions: readonly Compression[];
  /** Builds the error thrown for a refused request (adds the request id; logs where needed). */
  readonly reject: (code: Code, message: string) => ConnectError;
}

const ENVELOPE_HEADER_BYTES = 5;
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
export async function* checkRequestBody(body: AsyncIterable<Uint8Array>, check: BodyCheck): AsyncGenerator<Uint8Array> {
  // Bytes not yet checked, joined only once the envelope they start (or its header) is complete.
  let queued: Uint8Array[] = [];
  let queuedBytes = 0;
  let need = ENVELOPE_HEADER_BYTES;
  for await (const chunk of body) {
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
async function checkCompleteEnvelopes(bytes: Uint8Array, check: BodyCheck): Promise<{ used: number; need: number }> {
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
function envelopeLength(bytes: Uint8Array, offset: number, check: BodyCheck): number {
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

/**
 * The body of a unary call as connect-es reads it, checked (see checkRequestBody): the whole body, read
 * from the Node stream's events when connect-es asks for it and handed over at once, rather than
 * through the stream's async iterator and a checking generator over it — on the hot path those layers
 * cost more than the check. A unary call carries one message: a Connect unary body is that message; an
 * enveloped body (gRPC, gRPC-Web) is one envelope, so anything past one envelope's worth of bytes
 * is refused as it arrives — RESOURCE_EXHAUSTED for a message over the limit (known from the first
 * envelope's header), UNIMPLEMENTED for a second message (as connect-es answers it) — and the request stream is destroyed, as
 * connect-es leaves it when it stops reading early. A request that errors or closes before its end
 * makes the read fail with that error.
 */
export function checkedUnaryBody(source: Readable, check: BodyCheck): AsyncIterable<Uint8Array> {
  let delivered = false;
  const iterator: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]: () => iterator,
    async next() {
      if (delivered) return { done: true, value: undefined };
      delivered = true;
      if (check.format.framing === "whole") {
        const whole = await readWhole(source, check.readMaxBytes, () => check.reject(Code.ResourceExhausted, `request message is larger than the limit of ${check.readMaxBytes} bytes`));
        const { encoding } = check.format;
        await checkMessage(whole, encoding !== undefined && encoding !== "identity", check);
        return { done: false, value: whole };
      }
      const whole = await readWhole(
        source,
        ENVELOPE_HEADER_BYTES + check.readMaxBytes,
        // What connect-es answers a second message of a unary call (gRPC's cardinality violation).
        () => check.reject(Code.Unimplemented, "protocol error: received extra input message for unary method"),
        // The first envelope's header, as soon as it is here: reserved flags or a length past the limit.
        (head) => void envelopeLength(head, 0, check),
      );
      const { used } = await checkCompleteEnvelopes(whole, check);
      if (used < whole.byteLength) throw check.reject(Code.InvalidArgument, "request body ends inside a message frame");
      return { done: false, value: whole };
    },
    async return() {
      delivered = true;
      return { done: true, value: undefined };
    },
  };
  return iterator;
}

/**
 * The whole of `source`. Past `limit` bytes, or when `checkHead` throws for the first 5 bytes, the read
 * stops, the stream is destroyed and the read fails with `tooLarge()` or what `checkHead` threw.
 */
function readWhole(source: Readable, limit: number, tooLarge: () => Error, checkHead?: (head: Uint8Array) => void): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let headChecked = checkHead === undefined;
    const stop = () => {
      source.off("data", onData);
      source.off("end", onEnd);
      source.off("error", onError);
      source.off("close", onClose);
    };
    const fail = (error: unknown) => {
      stop();
      reject(error);
      // As connect-es leaves a stream it stops reading early: destroyed. Not at once: a small request
      // whose end is in the same packet completes first, and its connection lives on for the answer.
      setImmediate(() => source.destroy());
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (!headChecked && size >= ENVELOPE_HEADER_BYTES) {
        headChecked = true;
        try {
          checkHead?.(chunks.length === 1 ? chunk : Buffer.concat(chunks, size));
        } catch (error) {
          fail(error);
          return;
        }
      }
      if (size > limit) fail(tooLarge());
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const onClose = () => {
      stop();
      reject(new ConnectError("the request body was cut off", Code.Canceled));
    };
    if (source.readableEnded) {
      resolve(new Uint8Array(0));
      return;
    }
    source.on("data", onData);
    source.once("end", onEnd);
    source.once("error", onError);
    source.once("close", onClose);
  });
}

async function checkMessage(bytes: Uint8Array, compressed: boolean, check: BodyCheck): Promise<void> {
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
