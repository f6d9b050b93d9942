import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { checkBoundaries, checkFileSizes } from "../../scripts/check-architecture.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

describe("the architecture rules (docs/architecture.md)", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A throwaway tree with these files under src/. */
  async function tree(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), "portcullis-arch-"));
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, "src", path)), { recursive: true });
      await writeFile(join(dir, "src", path), text);
    }
    return dir;
  }

  it("hold for this repository with no exceptions", () => {
    expect(checkBoundaries(ROOT)).toEqual([]);
    expect(checkFileSizes(ROOT)).toEqual([]);
  });

  it("refuse a domain module that imports the store, the transport or generated code", async () => {
    const root = await tree({
      "domain/thing.ts": 'import type { Store } from "../store/mongo-store.ts";\nimport {\n  Code,\n} from "@connectrpc/connect";\nexport const x = import("../../gen/portcullis/v1/auth_pb.js");\n',
      "store/mongo-store.ts": "export type Store = object;\n",
    });
    const found = checkBoundaries(root).map((v) => `${v.file}:${v.line} ${v.specifier}`);
    expect(found).toEqual(["src/domain/thing.ts:1 ../store/mongo-store.ts", "src/domain/thing.ts:2 @connectrpc/connect", "src/domain/thing.ts:5 ../../gen/portcullis/v1/auth_pb.js"]);
  });

  it("refuse app/ to anyone but main.ts and the CLI, and the store importing handlers", async () => {
    const root = await tree({
      "main.ts": 'import "./app/gateway.ts";\n',
      "cli/main.ts": 'import "../app/gateway.ts";\n',
      "app/gateway.ts": "export {};\n",
      "handlers/routes.ts": 'import { x } from "../app/gateway.ts";\n',
      "store/users-store.ts": 'export { y } from "../handlers/routes.ts";\n',
    });
    expect(checkBoundaries(root).map((v) => v.file)).toEqual(["src/handlers/routes.ts", "src/store/users-store.ts"]);
  });

  it("name a folder no rule knows, and a long file that does not say why", async () => {
    const long = `${"export const a = 1;\n".repeat(301)}`;
    const root = await tree({ "widgets/w.ts": "export {};\n", "domain/long.ts": long, "domain/long-ok.ts": `// Over 300 lines: one table.\n${long}` });
    expect(checkBoundaries(root).map((v) => v.message)).toEqual([expect.stringContaining("src/widgets is not a layer")]);
    expect(checkFileSizes(root).map((v) => v.file)).toEqual(["src/domain/long.ts"]);
  });
});
