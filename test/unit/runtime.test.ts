import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

describe("runtime", () => {
  it("runs on the Node LTS the project brings from the npm registry", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      engines: { node: string };
      dependencies: Record<string, string>;
    };
    expect(process.versions.node.split(".")[0]).toBe("24");
    expect(pkg.dependencies["node"]?.split(".")[0]).toBe("24");
    expect(pkg.engines.node).toContain("24");
  });
});
