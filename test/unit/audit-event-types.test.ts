import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
// An event type as the source writes it: a string literal of a known family, e.g. "api_key.revoke".
const TYPE_LITERAL = /"((?:access|ai|api_key|audio|audit|auth|credential|job|mfa|system|user)\.[a-z_]+)"/g;

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : Promise.resolve(e.name.endsWith(".ts") ? [join(dir, e.name)] : []))));
  return nested.flat();
}

/**
 * audit.proto points to docs/audit-events.md for the list of event types: it must name every type the
 * gateway writes, and nothing it does not.
 */
describe("the documented audit event types", () => {
  it("are exactly the types the source code writes", async () => {
    const written = new Set<string>();
    // Permission names (`audit.read`, `system.emergency`) share the families' prefixes but are no events.
    for (const file of (await sourceFiles(join(ROOT, "src"))).filter((f) => !f.endsWith(join("src", "domain", "permissions.ts")))) {
      for (const match of (await readFile(file, "utf8")).matchAll(TYPE_LITERAL)) written.add(match[1]!);
    }
    const doc = await readFile(join(ROOT, "docs", "audit-events.md"), "utf8");
    const documented = new Set([...doc.matchAll(/^\| `([a-z_]+\.[a-z_]+)` \|/gm)].map((m) => m[1]!));
    expect([...documented].sort()).toEqual([...written].sort());

    const proto = await readFile(join(ROOT, "proto", "portcullis", "v1", "audit.proto"), "utf8");
    const example = /The event type, dot-separated, for example ([^;]+);/.exec(proto.replace(/\n\s*\/\/ /g, " "));
    expect(example, "AuditEvent.type's comment gives examples").not.toBeNull();
    const examples = [...example![1]!.matchAll(/"([a-z_.]+)"/g)].map((m) => m[1]!);
    expect(examples.length).toBeGreaterThan(0);
    for (const type of examples) expect(documented, `the proto's example ${type}`).toContain(type);
  });
});
