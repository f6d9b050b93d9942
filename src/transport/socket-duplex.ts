import type { Socket } from "node:net";
import { Duplex } from "node:stream";

/**
 * A TCP socket seen through a plain Duplex, for an HTTP/2 session that must read bytes the router
 * already took off the socket (and unshifted). Unlike `Duplex.from({ readable, writable })`, writes
 * that arrive together — an HTTP/2 response is a HEADERS, a DATA and a trailing HEADERS frame, written
 * corked — reach the socket as one `writev` instead of one system call per frame.
 */
export class SocketDuplex extends Duplex {
  readonly #socket: Socket;

  constructor(socket: Socket) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#socket.write(chunk, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const socket = this.#socket;
    socket.cork();
    for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]!.chunk);
    socket.write(chunks[chunks.length - 1]!.chunk, callback);
    socket.uncork();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy(error ?? undefined);
    callback(error);
  }
}
