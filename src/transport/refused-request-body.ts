import * as http2 from "node:http2";
import type { NodeRequest, NodeResponse } from "./node-request.ts";

// The most of a refused HTTP/1.1 request body read (and dropped) to keep its answer readable.
const DISCARD_MAX_BYTES = 64 * 1024 * 1024;

/**
 * What becomes of the rest of a request whose body was refused part-way (a message over the size limit is
 * refused as soon as its length is known, while the client may still be sending it). The answer goes
 * out at once; the rest of the body is of no use, but clients that write their whole request before
 * they read (most HTTP/1.1 clients, and unary calls of many gRPC clients) must still get to read it:
 *
 * - HTTP/1.1: the rest of the body is read and dropped, as a server's lingering close does, so the client
 *   finishes writing and reads the answer on a connection that stays usable; past DISCARD_MAX_BYTES the
 *   connection is closed. Left unread, the client would block until the body timeout cut it (408).
 * - HTTP/2: once the answer is out, RST_STREAM(NO_ERROR) tells the client to stop sending (RFC 9113
 *   §8.1: a client must not discard the response because of it); what arrives meanwhile is dropped.
 */
export function discardRefusedRequestBody(req: NodeRequest, res: NodeResponse, maxBytes = DISCARD_MAX_BYTES): void {
  if (req.complete) return;
  const isHttp2 = "stream" in req;
  const stopSending = () => {
    if (!isHttp2) {
      req.socket?.destroy();
      return;
    }
    const { stream } = req;
    if (stream.closed || stream.destroyed) return;
    stream.close(res.writableFinished ? http2.constants.NGHTTP2_NO_ERROR : http2.constants.NGHTTP2_CANCEL);
  };
  let discarded = 0;
  const drop = () => {
    for (let chunk: Buffer | null = req.read(); chunk !== null; chunk = req.read()) {
      discarded += chunk.byteLength;
      if (discarded > maxBytes) {
        req.off("readable", drop);
        stopSending();
        return;
      }
    }
  };
  req.on("readable", drop);
  drop();
  if (!isHttp2) return;
  if (res.writableFinished) stopSending();
  else res.once("finish", () => !req.complete && stopSending());
}
