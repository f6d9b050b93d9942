#!/usr/bin/env node
// A protoc/buf plugin that writes every input file (with source comments) as one base64-encoded
// FileDescriptorSet. gRPC reflection serves it, so `grpcurl describe` shows the proto documentation.
// Plain JavaScript so it runs on any Node that buf finds on PATH. Base64, because a plugin's output
// content is a proto `string`, which must be valid UTF-8.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, CodeGeneratorResponseSchema, CodeGeneratorResponse_Feature, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = fromBinary(CodeGeneratorRequestSchema, new Uint8Array(Buffer.concat(chunks)));

const set = create(FileDescriptorSetSchema, { file: request.protoFile });
const base64 = Buffer.from(toBinary(FileDescriptorSetSchema, set)).toString("base64");
const lines = base64.match(/.{1,100}/g) ?? [];

const response = create(CodeGeneratorResponseSchema, {
  supportedFeatures: BigInt(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL),
  file: [{ name: "descriptor-set.b64", content: `${lines.join("\n")}\n` }],
});
process.stdout.write(toBinary(CodeGeneratorResponseSchema, response));
