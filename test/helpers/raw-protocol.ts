import * as net from "node:net";
import * as tls from "node:tls";

/**
 * Raw-protocol probes: bytes on a plain TCP socket, for what no well-behaved client will send (slow
 * or stalled requests, malformed frames and header blocks).
 */

/** A raw TCP connection that records everything it receives and how it ended. */
export interface RawConnection {
  readonly socket: net.Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the connection is closed: "reset" if it ended with ECONNRESET, else "closed". */
  readonly closed: Promise<"closed" | "reset">;
  write(bytes: string | Uint8Array): void;
  destroy(): void;
}

/** Connects to 127.0.0.1:`port`, over TLS (trusting `ca`, offering `alpn`) when `secure` is given. */
export async function rawConnect(port: number, secure?: { ca: string; alpn: string }): Promise<RawConnection> {
  const socket = secure ? tls.connect({ port, host: "127.0.0.1", servername: "localhost", ca: secure.ca, ALPNProtocols: [secure.alpn] }) : net.connect(port, "127.0.0.1");
  let received = Buffer.alloc(0);
  let reset = false;
  socket.on("data", (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  socket.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "ECONNRESET") reset = true;
  });
  const closed = new Promise<"closed" | "reset">((resolve) => socket.once("close", () => resolve(reset ? "reset" : "closed")));
  await new Promise<void>((resolve, reject) => {
    socket.once(secure ? "secureConnect" : "connect", resolve);
    socket.once("error", reject);
  });
  return {
    socket,
    received: () => received,
    closed,
    write: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    destroy: () => socket.destroy(),
  };
}

/** Resolves with `promise`'s value, or "timeout" when it takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), ms);
    void promise.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** The status line of an HTTP/1.1 response, e.g. "HTTP/1.1 408 Request Timeout". */
export function statusLine(response: Buffer): string {
  return response.toString("latin1").split("\r\n")[0] ?? "";
}

/** A gRPC / Connect-streaming envelope: flags byte, 32-bit length, message. */
export function envelope(flags: number, message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([header, message]);
}

// --- HTTP/2 ---------------------------------------------------------------------------------------

export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const H2 = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;
export const H2_FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 } as const;

export function h2Frame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.byteLength, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** The client's connection preface followed by an empty SETTINGS frame. */
export function h2ClientStart(): Buffer {
  return Buffer.concat([H2_PREFACE, h2Frame(H2.SETTINGS, 0, 0)]);
}

/**
 * An HPACK header block of literal fields without indexing and without Huffman coding, so any byte can
 * be sent as a value (names and values up to 126 bytes).
 */
export function hpackBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, "latin1");
    const v = Buffer.from(value, "latin1");
    if (n.length > 126 || v.length > 126) throw new Error("hpackBlock: field too long for a one-byte length");
    parts.push(Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v);
  }
  return Buffer.concat(parts);
}

export interface H2FrameSeen {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** The HTTP/2 frames in what a server sent (the server sends no preface of its own). */
export function h2Frames(received: Buffer): H2FrameSeen[] {
  const frames: H2FrameSeen[] = [];
  let offset = 0;
  while (received.length - offset >= 9) {
    const length = received.readUIntBE(offset, 3);
    if (received.length - offset < 9 + length) break;
    frames.push({
      type: received[offset + 3]!,
      flags: received[offset + 4]!,
      streamId: received.readUInt32BE(offset + 5) & 0x7fffffff,
      payload: received.subarray(offset + 9, offset + 9 + length),
    });
    offset += 9 + length;
  }
  return frames;
}
