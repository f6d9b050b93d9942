import { toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/**
 * A response as `--json` prints it: the message's canonical protobuf JSON (lowerCamelCase field names,
 * enum names, RFC 3339 timestamps, 64-bit integers as strings; fields at their default are left out),
 * indented, one document per command. Scripts can rely on its shape: it is the API's own.
 */
export function formatJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): string {
  return `${JSON.stringify(toJson(schema, message), null, 2)}\n`;
}
