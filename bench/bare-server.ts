// The baseline of the authentication benchmark: the same RPC (AuthService/GetJwks, answered from
// memory) on a bare Connect server — connect-node on node:http2, no interceptors, no logging, no
// database. Prints {"port": N} once listening; stops on SIGTERM.
import { createServer } from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AuthService } from "../gen/portcullis/v1/auth_pb.js";

const jwks = { keys: [{ kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", kid: "bare", alg: "EdDSA", use: "sig" }] };
const handler = connectNodeAdapter({
  routes: (router) =>
    router.service(AuthService, {
      getJwks: () => ({ keys: jwks.keys.map((k) => ({ ...k, y: "", n: "", e: "" })), json: JSON.stringify(jwks) }),
    }),
});
const server = createServer(handler);
server.on("connection", (socket: import("node:net").Socket) => socket.setNoDelay(true));
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
