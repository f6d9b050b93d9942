import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1, ServerReflectionResponseSchema as ResponseSchemaV1, type ServerReflectionRequest as RequestV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha, ServerReflectionResponseSchema as ResponseSchemaV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { DescriptorIndex } from "../reflection/descriptor-index.ts";

// gRPC status codes used inside reflection's ErrorResponse (it reports errors in-band).
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: Array<{ name: string }> } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Registers gRPC server reflection, v1 and v1alpha (grpcurl and older tools use either), answering from
 * the descriptor set with source comments so `grpcurl describe` shows the API documentation. Each stream
 * sends a file at most once, as the reference implementation does.
 */
export function registerReflection(router: ConnectRouter, index: DescriptorIndex, serviceNames: () => string[]): void {
  router.service(ServerReflectionV1, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) {
        yield create(ResponseSchemaV1, { validHost: request.host, originalRequest: request, messageResponse: answer(request, index, serviceNames, sent) });
      }
    },
  });
  router.service(ServerReflectionV1alpha, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) {
        // v1alpha messages are field-for-field identical to v1.
        const messageResponse = answer(request as unknown as RequestV1, index, serviceNames, sent);
        yield create(ResponseSchemaV1alpha, { validHost: request.host, originalRequest: request, messageResponse });
      }
    },
  });
}

function answer(request: RequestV1, index: DescriptorIndex, serviceNames: () => string[], sent: Set<string>): Answer {
  const files = (fileName: string | undefined, what: string): Answer => {
    const found = fileName === undefined ? undefined : index.fileWithDependencies(fileName);
    if (!found) return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } };
    const fresh = found.filter((f) => !sent.has(f.name) || f.name === fileName);
    for (const f of fresh) sent.add(f.name);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: fresh.map((f) => f.bytes) } };
  };
  const req = request.messageRequest;
  switch (req.case) {
    case "fileByFilename":
      return files(req.value, "file");
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(req.value), "symbol");
    case "fileContainingExtension":
      return files(index.fileContainingExtension(req.value.containingType, req.value.extensionNumber), "extension");
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbersOf(req.value);
      if (!numbers) return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: "type not found" } };
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value, extensionNumber: numbers } };
    }
    case "listServices":
      return { case: "listServicesResponse", value: { service: serviceNames().map((name) => ({ name })) } };
    default:
      return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "unsupported reflection request" } };
  }
}
