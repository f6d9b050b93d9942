import { ensureGoTool } from "../../src/tools/go-tool.ts";

/**
 * Finds grpcurl on PATH or in the tools dir, installing it there with `go install` when Go is present.
 * Resolves undefined only when neither grpcurl nor Go is available.
 */
export function ensureGrpcurl(): Promise<string | undefined> {
  return ensureGoTool("grpcurl", "github.com/fullstorydev/grpcurl/cmd/grpcurl");
}
