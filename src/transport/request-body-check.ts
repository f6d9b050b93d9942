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
 * protocol. (A Connect unary body, one message, is checked by checkedWholeBody.)
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
      let offset = 0;
      need = ENVELOPE_HEADER_BYTES;
      while (pending.byteLength - offset >= ENVELOPE_HEADER_BYTES) {
        const flags = pending[offset]!;
        const length = new DataView(pending.buffer, pending.byteOffset + offset + 1, 4).getUint32(0);
        if ((flags & ~compressedFlag) !== 0) {
          throw check.reject(Code.InvalidArgument, `invalid message frame: reserved flag bits set (0x${flags.toString(16).padStart(2, "0")})`);
        }
        if (length > check.readMaxBytes) {
          throw check.reject(Code.ResourceExhausted, `request message of ${length} bytes is larger than the limit of ${check.readMaxBytes}`);
        }
        if (pending.byteLength - offset < ENVELOPE_HEADER_BYTES + length) {
          need = ENVELOPE_HEADER_BYTES + length;
          break;
        }
        const start = offset + ENVELOPE_HEADER_BYTES;
        await checkMessage(pending.subarray(start, start + length), (flags & compressedFlag) === compressedFlag, check);
        offset = start + length;
      }
      const rest = pending.subarray(offset);
      queued = rest.byteLength > 0 ? [rest] : [];
      queuedBytes = rest.byteLength;
    }
    yield chunk;
  }
  if (queuedBytes > 0) throw check.reject(Code.InvalidArgument, "request body ends inside a message frame");
}

/**
 * A Connect unary request body (one message, not enveloped) as connect-es reads it: the whole body, once,
 * checked like an enveloped message (see checkRequestBody). Read from the Node stream's events when
 * connect-es asks for it, not through the stream's async iterator and a generator over it: on the hot
 * path those layers cost more than the check.
 *
 * A body larger than `readMaxBytes` is refused (RESOURCE_EXHAUSTED) as soon as it passes the limit and
 * the request stream is destroyed, as connect-es leaves it when it stops reading early. A request that
 * errors or closes before its end makes the read fail with that error.
 */
export function checkedWholeBody(source: Readable, check: BodyCheck): AsyncIterable<Uint8Array> {
  let delivered = false;
  const iterator: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]: () => iterator,
    async next() {
      if (delivered) return { done: true, value: undefined };
      delivered = true;
      const whole = await readWhole(source, check);
      const { encoding } = check.format;
      await checkMessage(whole, encoding !== undefined && encoding !== "identity", check);
      return { done: false, value: whole };
    },
    async return() {
      delivered = true;
      return { done: true, value: undefined };
    },
  };
  return iterator;
}

function readWhole(source: Readable, check: BodyCheck): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      source.off("data", onData);
      source.off("end", onEnd);
      source.off("error", onError);
      source.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > check.readMaxBytes) {
        stop();
        source.destroy();
        reject(check.reject(Code.ResourceExhausted, `request message is larger than the limit of ${check.readMaxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
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
