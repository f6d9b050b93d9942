// The baseline of the authentication and hot-path benchmarks: the same RPCs (AuthService/GetJwks and
// AuthService/WhoAmI) on a bare Connect server — connect-node with no interceptors, no logging, no
// authentication, no database — answering with canned messages of the gateway's own shape (WhoAmI's
// is passed in BARE_WHOAMI_JSON, as the gateway answered it). Listens with HTTP/2 (h2c: gRPC, Connect)
// on one port and HTTP/1.1 (Connect) on another; prints {"port": N, "http1Port": M} once listening and
// stops on SIGTERM.
import { createServer as createHttp1Server } from "node:http";
import { createServer } from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { fromJson } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AuthService, WhoAmIResponseSchema } from "../gen/portcullis/v1/auth_pb.js";

const jwks = { keys: [{ kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", kid: "bare", alg: "EdDSA", use: "sig" }] };
const whoAmI = fromJson(WhoAmIResponseSchema, JSON.parse(process.env["BARE_WHOAMI_JSON"] ?? "{}"));
const handler = connectNodeAdapter({
  routes: (router) =>
    router.service(AuthService, {
      getJwks: () => ({ keys: jwks.keys.map((k) => ({ ...k, y: "", n: "", e: "" })), json: JSON.stringify(jwks) }),
      whoAmI: () => whoAmI,
    }),
});
const noDelay = (socket: Socket) => socket.setNoDelay(true);
const http2 = createServer(handler).on("connection", noDelay);
const http1 = createHttp1Server({ keepAliveTimeout: 60_000 }, handler).on("connection", noDelay);
const listening = (server: { listen(port: number, host: string, cb: () => void): unknown; address(): AddressInfo | string | null }) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
const [port, http1Port] = await Promise.all([listening(http2), listening(http1)]);
process.stdout.write(`${JSON.stringify({ port, http1Port })}\n`);
process.on("SIGTERM", () => {
  http1.closeAllConnections();
  http2.close();
  http1.close(() => process.exit(0));
});
