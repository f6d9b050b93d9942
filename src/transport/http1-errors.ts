/**
 * The answer to an HTTP/1.1 request Node's parser refused, or undefined when there is nobody to answer
 * (the connection itself failed). The parser stops at the first error, so the connection cannot be
 * reused: every answer says `Connection: close`.
 *
 * Node's default handler writes the same statuses but destroys the socket at once, and a socket closed
 * with request bytes still unread is reset by the kernel, so the client usually never saw them.
 */
export function answerForHttp1Error(error: Error & { code?: string }): string | undefined {
  const code = error.code ?? "";
  if (code === "HPE_HEADER_OVERFLOW") return response(431, "Request Header Fields Too Large");
  if (code === "HPE_CHUNK_EXTENSIONS_OVERFLOW") return response(413, "Content Too Large");
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return response(408, "Request Timeout");
  // Every other llhttp error (HPE_*) is a malformed request: bad characters, both Content-Length and
  // Transfer-Encoding, bare LF line ends, an invalid method or version...
  if (code.startsWith("HPE_")) return response(400, "Bad Request");
  return undefined;
}

function response(status: number, reason: string): string {
  return `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}
