import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrpcJsClient } from "../../clients/grpc-js.ts";
import {
  ServerReflection as ServerReflectionV1alpha,
  ServerReflectionRequestSchema as RequestV1alpha,
  type ServerReflectionResponseSchema as ResponseV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { loadDescriptorIndex } from "../../src/reflection/descriptor-index.ts";
import { startTestServer, type TestServer } from "../helpers/test-server.ts";

describe("descriptor index", () => {
  const index = loadDescriptorIndex();

  it("finds the file of services, methods, messages, fields, enums and extensions", () => {
    expect(index.fileContainingSymbol("portcullis.v1.AuthService")).toBe("portcullis/v1/auth.proto");
    expect(index.fileContainingSymbol("portcullis.v1.AuthService.Login")).toBe("portcullis/v1/auth.proto");
    expect(index.fileContainingSymbol(".portcullis.v1.AccessRule")).toBe("portcullis/v1/options.proto");
    expect(index.fileContainingSymbol("portcullis.v1.AccessRule.permission")).toBe("portcullis/v1/options.proto");
    expect(index.fileContainingSymbol("portcullis.v1.Audience")).toBe("portcullis/v1/options.proto");
    expect(index.fileContainingSymbol("portcullis.v1.access")).toBe("portcullis/v1/options.proto");
    expect(index.fileContainingSymbol("portcullis.v1.Nope")).toBeUndefined();
    expect(index.fileContainingExtension("google.protobuf.MethodOptions", 50100)).toBe("portcullis/v1/options.proto");
    expect(index.extensionNumbersOf("google.protobuf.MethodOptions")).toContain(50100);
  });

  it("serves files with their dependencies first and their source comments", () => {
    const files = index.fileWithDependencies("portcullis/v1/options.proto")!;
    expect(files.map((f) => f.name)).toEqual(["google/protobuf/descriptor.proto", "portcullis/v1/options.proto"]);
    const options = fromBinary(FileDescriptorProtoSchema, files[1]!.bytes);
    const comments = options.sourceCodeInfo?.location.map((l) => l.leadingComments).join("\n") ?? "";
    expect(comments).toContain("AccessRule declares who may call an RPC");
  });
});

describe("reflection v1alpha (older tools)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("lists services and answers file requests over a grpc-js bidi stream", async () => {
    const client = createGrpcJsClient(ServerReflectionV1alpha, `127.0.0.1:${server.port}`);
    try {
      const call = client.serverReflectionInfo();
      const responses: Array<ReturnType<typeof create<typeof ResponseV1alpha>>> = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (m) => responses.push(m as (typeof responses)[number]));
        call.on("end", resolve);
        call.on("error", reject);
      });
      call.write(create(RequestV1alpha, { messageRequest: { case: "listServices", value: "" } }));
      call.write(create(RequestV1alpha, { messageRequest: { case: "fileContainingSymbol", value: "portcullis.v1.AuditService" } }));
      call.write(create(RequestV1alpha, { messageRequest: { case: "fileByFilename", value: "no/such.proto" } }));
      call.end();
      await done;
      expect(responses).toHaveLength(3);
      const [list, file, missing] = responses;
      expect(list?.messageResponse.case).toBe("listServicesResponse");
      if (list?.messageResponse.case === "listServicesResponse") {
        expect(list.messageResponse.value.service.map((s) => s.name)).toContain("portcullis.v1.AuditService");
      }
      expect(file?.messageResponse.case).toBe("fileDescriptorResponse");
      if (file?.messageResponse.case === "fileDescriptorResponse") {
        const names = file.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
        expect(names).toContain("portcullis/v1/audit.proto");
      }
      expect(missing?.messageResponse.case).toBe("errorResponse");
    } finally {
      client.close();
    }
  });
});
