/**
 * How many credential header fields (`authorization`, `x-api-key`) a request carried, counted on the
 * raw header list. Node's HTTP layers keep only the first of several `authorization` fields (HTTP/1.1
 * and HTTP/2 alike), so a request with two would otherwise be read as if it had one: whichever came
 * first would win. The count lets the authentication interceptor refuse such an ambiguous request.
 */
export function credentialHeaderCount(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name === "authorization" || name === "x-api-key") count++;
  }
  return count;
}
