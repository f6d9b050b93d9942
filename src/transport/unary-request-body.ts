import type { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { type BodyCheck, checkCompleteEnvelopes, checkMessage, ENVELOPE_HEADER_BYTES, envelopeLength } from "./request-body-check.ts";

/**
 * The body of a unary call as connect-es reads it, checked (see checkRequestBody): the whole body, read
 * from the Node stream's events when connect-es asks for it and handed over at once, rather than
 * through the stream's async iterator and a checking generator over it — on the hot path those layers
 * cost more than the check. A unary call carries one message: a Connect unary body is that message; an
 * enveloped body (gRPC, gRPC-Web) is one envelope, so anything past one envelope's worth of bytes
 * is refused as it arrives — RESOURCE_EXHAUSTED for a message over the limit (known from the first
 * envelope's header), UNIMPLEMENTED for a second message (as connect-es answers it) — and the rest of
 * the request is left unread for the caller (see BodyCheck.reject). A request that errors or closes
 * before its end makes the read fail with that error.
 */
export function checkedUnaryBody(source: Readable, check: BodyCheck): AsyncIterable<Uint8Array> {
  let delivered = false;
  const iterator: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]: () => iterator,
    async next() {
      if (delivered) return { done: true, value: undefined };
      delivered = true;
      if (check.format.framing === "whole") {
        if (check.declaredBytes !== undefined && check.declaredBytes > check.readMaxBytes) {
          throw check.reject(Code.ResourceExhausted, `request message of ${check.declaredBytes} bytes is larger than the limit of ${check.readMaxBytes}`);
        }
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
 * stops (the rest is left to the caller) and fails with `tooLarge()` or what `checkHead` threw.
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
