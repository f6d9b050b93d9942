import { createServer } from "node:net";

/**
 * A loopback TCP port that was free a moment ago: the OS picks one for a throwaway listener, which is
 * closed before the port is handed to the database server. Another process could take it in between;
 * the server then fails to start and the launcher reports it.
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("could not determine a free port"))));
    });
  });
}
