import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

export type WireProtocol = "grpc" | "grpc-web" | "connect";

export interface NodeTransportOptions {
  /** For example `http://127.0.0.1:50051`. */
  readonly baseUrl: string;
  readonly protocol?: WireProtocol;
  /** HTTP/1.1 works for Connect and gRPC-Web; gRPC needs HTTP/2. */
  readonly httpVersion?: "1.1" | "2";
  /** Sent as `authorization: Bearer <token>` on every call (a JWT or an API key). */
  readonly token?: string;
  /** Further client interceptors, run after the authorization header is set. */
  readonly interceptors?: readonly Interceptor[];
}

/** A Node transport for Portcullis in any of its three protocols. */
export function createPortcullisTransport(options: NodeTransportOptions): Transport {
  const interceptors: Interceptor[] = [];
  if (options.token !== undefined) {
    const header = `Bearer ${options.token}`;
    interceptors.push((next) => (req) => {
      req.header.set("authorization", header);
      return next(req);
    });
  }
  interceptors.push(...(options.interceptors ?? []));
  const protocol = options.protocol ?? "connect";
  if (protocol === "grpc") return createGrpcTransport({ baseUrl: options.baseUrl, interceptors });
  const common = { baseUrl: options.baseUrl, httpVersion: options.httpVersion ?? "2", interceptors } as const;
  return protocol === "grpc-web" ? createGrpcWebTransport(common) : createConnectTransport(common);
}

/** A typed promise client for one Portcullis service. */
export function createPortcullisClient<S extends DescService>(service: S, transport: Transport): Client<S> {
  return createClient(service, transport);
}
