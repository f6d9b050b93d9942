import { fromBinary, toBinary, create, type DescMethod, type DescService, type MessageInitShape, type MessageShape, type DescMessage } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/**
 * Typed @grpc/grpc-js clients built from the protobuf-es descriptors in gen/ — no second code generator.
 * Unary methods return promises, server-streaming methods async iterables, bidi methods grpc-js duplex
 * streams of protobuf-es messages.
 */
export type GrpcJsClient<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: GrpcCallOptions) => Promise<MessageShape<O>>
    : S["method"][K] extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (request: MessageInitShape<I>, options?: GrpcCallOptions) => AsyncIterable<MessageShape<O>>
      : S["method"][K] extends { methodKind: "bidi_streaming" | "client_streaming" }
        ? (options?: GrpcCallOptions) => grpc.ClientDuplexStream<unknown, unknown>
        : never;
} & { close(): void };

export interface GrpcCallOptions {
  /** Request metadata, e.g. `{ authorization: "Bearer …" }`. */
  readonly metadata?: Record<string, string>;
  readonly deadlineMs?: number;
}

/** The grpc-js service definition of a protobuf-es service: paths, serializers, streaming flags. */
export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const entries = service.methods.map((method) => [
    method.localName,
    {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    },
  ]);
  return Object.fromEntries(entries) as grpc.ServiceDefinition;
}

/** Creates a typed grpc-js client for `service` at `address` (host:port). Plaintext unless credentials are given. */
export function createGrpcJsClient<S extends DescService>(service: S, address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()): GrpcJsClient<S> {
  const Constructor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.typeName);
  const client = new Constructor(address, credentials) as unknown as Record<string, (...args: unknown[]) => unknown> & grpc.Client;
  const typed: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) {
    const call = client[method.localName]!.bind(client);
    typed[method.localName] = wrap(method, call);
  }
  return typed as GrpcJsClient<S>;
}

function wrap(method: DescMethod, call: (...args: unknown[]) => unknown) {
  const metadataOf = (options?: GrpcCallOptions) => {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(options?.metadata ?? {})) metadata.set(k, v);
    return metadata;
  };
  const callOptions = (options?: GrpcCallOptions): grpc.CallOptions => (options?.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {});
  switch (method.methodKind) {
    case "unary":
      return (request: MessageInitShape<DescMessage>, options?: GrpcCallOptions) =>
        new Promise((resolve, reject) => {
          call(create(method.input, request), metadataOf(options), callOptions(options), (error: grpc.ServiceError | null, response: unknown) => (error ? reject(error) : resolve(response)));
        });
    case "server_streaming":
      return (request: MessageInitShape<DescMessage>, options?: GrpcCallOptions) => call(create(method.input, request), metadataOf(options), callOptions(options)) as AsyncIterable<unknown>;
    default:
      return (options?: GrpcCallOptions) => call(metadataOf(options), callOptions(options));
  }
}
