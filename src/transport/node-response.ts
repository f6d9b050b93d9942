import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { NodeResponse } from "./node-request.ts";

/**
 * Writes connect-es's answer to a unary call: the whole body gathered, then the status, headers, body
 * and trailers in one go — one `end` (one write on HTTP/1.1, one DATA frame on HTTP/2) instead of
 * connect-node's write-then-end with a promise and listeners per chunk. A unary answer is complete as
 * soon as its first byte exists (connect-es serialises it after the handler returns), so gathering it
 * delays nothing; streams keep connect-node's writer, which sends each message as it comes.
 *
 * A client that went away is not an error: Node drops writes to a closed connection.
 */
export async function writeUnaryResponse(uRes: UniversalServerResponse, res: NodeResponse): Promise<void> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (uRes.body !== undefined) {
    for await (const chunk of uRes.body) {
      chunks.push(chunk);
      size += chunk.byteLength;
    }
  }
  // The members both response types share, in the shape both accept.
  const out = res as unknown as { writeHead(status: number, headers?: NodeHeaders): void; addTrailers(headers: NodeHeaders): void; end(chunk?: Uint8Array): void };
  out.writeHead(uRes.status, nodeHeaders(uRes.header));
  if (uRes.trailer !== undefined) out.addTrailers(nodeHeaders(uRes.trailer) ?? {});
  if (size === 0) out.end();
  else out.end(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
}

/** fetch Headers as a Node header object (repeated fields as arrays; names are lower case already). */
type NodeHeaders = Record<string, string | string[]>;

function nodeHeaders(header: Headers | undefined): NodeHeaders | undefined {
  if (header === undefined) return undefined;
  const node = Object.create(null) as NodeHeaders;
  header.forEach((value, name) => {
    const existing = node[name];
    if (existing === undefined) node[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else node[name] = [existing, value];
  });
  return node;
}
