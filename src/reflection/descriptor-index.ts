import { readFileSync } from "node:fs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type DescriptorProto, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";

/**
 * An index over the descriptor set that `buf generate` writes to gen/descriptor-set.b64 — every proto
 * file of the API with its source comments — answering the questions gRPC reflection asks.
 */
export interface DescriptorIndex {
  /** The file and everything it imports, dependencies first; undefined when unknown. */
  fileWithDependencies(fileName: string): Array<{ name: string; bytes: Uint8Array }> | undefined;
  /** The file that defines a fully-qualified symbol (message, enum, service, method, field, extension). */
  fileContainingSymbol(symbol: string): string | undefined;
  /** The file that defines extension `number` of message `containingType`. */
  fileContainingExtension(containingType: string, number: number): string | undefined;
  /** Field numbers of every known extension of a message. */
  extensionNumbersOf(containingType: string): number[] | undefined;
}

export const DESCRIPTOR_SET_FILE = new URL("../../gen/descriptor-set.b64", import.meta.url);

/** Reads the generated descriptor set. */
export function loadDescriptorIndex(file: URL | string = DESCRIPTOR_SET_FILE): DescriptorIndex {
  const bytes = Buffer.from(readFileSync(file, "utf8").replace(/\s+/g, ""), "base64");
  return createDescriptorIndex(fromBinary(FileDescriptorSetSchema, new Uint8Array(bytes)).file);
}

export function createDescriptorIndex(files: readonly FileDescriptorProto[]): DescriptorIndex {
  const byName = new Map<string, { proto: FileDescriptorProto; bytes: Uint8Array }>();
  const symbols = new Map<string, string>();
  const extensions = new Map<string, Map<number, string>>();

  const addExtension = (extendee: string, number: number, file: string) => {
    const type = extendee.replace(/^\./, "");
    let numbers = extensions.get(type);
    if (!numbers) {
      numbers = new Map();
      extensions.set(type, numbers);
    }
    numbers.set(number, file);
  };

  const addMessage = (message: DescriptorProto, prefix: string, file: string) => {
    const name = `${prefix}${message.name}`;
    symbols.set(name, file);
    for (const field of message.field) symbols.set(`${name}.${field.name}`, file);
    for (const oneof of message.oneofDecl) symbols.set(`${name}.${oneof.name}`, file);
    for (const nested of message.nestedType) addMessage(nested, `${name}.`, file);
    for (const e of message.enumType) symbols.set(`${name}.${e.name}`, file);
    for (const ext of message.extension) {
      symbols.set(`${name}.${ext.name}`, file);
      addExtension(ext.extendee, ext.number, file);
    }
  };

  for (const proto of files) {
    byName.set(proto.name, { proto, bytes: toBinary(FileDescriptorProtoSchema, proto) });
    const prefix = proto.package ? `${proto.package}.` : "";
    for (const message of proto.messageType) addMessage(message, prefix, proto.name);
    for (const e of proto.enumType) {
      symbols.set(`${prefix}${e.name}`, proto.name);
      // Enum values are scoped to the enum's parent, as in C++.
      for (const value of e.value) symbols.set(`${prefix}${value.name}`, proto.name);
    }
    for (const service of proto.service) {
      symbols.set(`${prefix}${service.name}`, proto.name);
      for (const method of service.method) symbols.set(`${prefix}${service.name}.${method.name}`, proto.name);
    }
    for (const ext of proto.extension) {
      symbols.set(`${prefix}${ext.name}`, proto.name);
      addExtension(ext.extendee, ext.number, proto.name);
    }
  }

  return {
    fileWithDependencies(fileName) {
      if (!byName.has(fileName)) return undefined;
      const ordered: Array<{ name: string; bytes: Uint8Array }> = [];
      const seen = new Set<string>();
      const visit = (name: string) => {
        const entry = byName.get(name);
        if (!entry || seen.has(name)) return;
        seen.add(name);
        for (const dependency of entry.proto.dependency) visit(dependency);
        ordered.push({ name, bytes: entry.bytes });
      };
      visit(fileName);
      return ordered;
    },
    fileContainingSymbol: (symbol) => symbols.get(symbol.replace(/^\./, "")),
    fileContainingExtension: (containingType, number) => extensions.get(containingType.replace(/^\./, ""))?.get(number),
    extensionNumbersOf(containingType) {
      const type = containingType.replace(/^\./, "");
      if (!symbols.has(type) && !extensions.has(type)) return undefined;
      return [...(extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b);
    },
  };
}
