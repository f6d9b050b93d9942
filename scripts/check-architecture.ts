// `npm run check:architecture`: the rules of docs/architecture.md, checked over every file in src/.
// 1. Import boundaries: each layer (a folder of src/, or main.ts) may import only the layers its rule
//    lists, and no package its rule forbids. There is no list of exceptions: a file that needs one is in
//    the wrong layer, or a contract is (declare it where it is used).
// 2. Size: a file over 300 lines holds a second concept; one that must stay whole says why in a
//    `// Over 300 lines: <reason>` comment within its first 20 lines.
// Exits 1 and names file, line and rule on a violation.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** What one layer may depend on. */
export interface LayerRule {
  /** Layers (folders of src/, `main`, or `gen` for the generated code, `package.json`) it may import. */
  readonly may: readonly string[] | "anything";
  /** Packages it must not import (a trailing `*` matches a scope or prefix). */
  readonly forbiddenPackages?: readonly string[];
  /** Why, as the violation message says it. */
  readonly why: string;
}

const TRANSPORT_PACKAGES = ["@connectrpc/*", "@bufbuild/*", "@grpc/*", "node:http", "node:http2", "node:tls"];
const DRIVERS = ["mongodb", "mongodb-*"];

/** The rules, from the outermost layer in. docs/architecture.md draws them. */
export const RULES: Readonly<Record<string, LayerRule>> = {
  main: { may: "anything", why: "main.ts is the process: it composes everything" },
  cli: { may: "anything", why: "the admin CLI composes its own commands (some server-less, on the store directly)" },
  app: {
    may: ["app", "transport", "interceptors", "handlers", "domain", "store", "keys", "providers", "tts", "access", "config", "log", "health", "reflection", "embedded-db"],
    why: "app/ is the composition root; only main.ts and the CLI may use it",
  },
  transport: {
    may: ["transport", "interceptors", "handlers", "domain", "access", "config", "log", "health", "reflection", "gen"],
    forbiddenPackages: DRIVERS,
    why: "the transport serves HTTP, answers what never reaches a handler in the wire format, and runs the interceptor chain and the routes; it knows no storage",
  },
  interceptors: {
    may: ["interceptors", "handlers", "domain", "access", "config", "log", "gen"],
    forbiddenPackages: DRIVERS,
    why: "interceptors wrap handlers and consume domain contracts; they know no storage",
  },
  handlers: {
    may: ["handlers", "domain", "health", "reflection", "gen"],
    forbiddenPackages: DRIVERS,
    why: "handlers convert requests, call the domain and convert answers: no storage, no interceptors, no wiring",
  },
  domain: {
    may: ["domain"],
    forbiddenPackages: [...TRANSPORT_PACKAGES, ...DRIVERS, "pino"],
    why: "the domain imports no transport, no generated code, no driver, no other layer: it declares the contracts it needs",
  },
  store: {
    may: ["store", "domain"],
    forbiddenPackages: TRANSPORT_PACKAGES,
    why: "the store implements the domain's store contracts over MongoDB and imports nothing above the domain",
  },
  providers: {
    may: ["providers", "domain", "config"],
    forbiddenPackages: [...TRANSPORT_PACKAGES, ...DRIVERS],
    why: "the AI provider adapters implement the domain's ChatProvider over HTTP, from their configuration; they know no storage and no gateway transport",
  },
  tts: { may: ["tts", "domain"], forbiddenPackages: [...TRANSPORT_PACKAGES, ...DRIVERS], why: "the speech engine implements the domain's SpeechEngine in processes of its own; it knows nothing else" },
  keys: { may: ["keys", "domain"], forbiddenPackages: [...TRANSPORT_PACKAGES, ...DRIVERS], why: "the key file implements the domain's SigningKeyFile; it knows nothing else" },
  access: { may: ["access", "domain", "config", "gen"], forbiddenPackages: DRIVERS, why: "access rules are read from the proto options for the interceptors" },
  "embedded-db": { may: ["embedded-db"], forbiddenPackages: TRANSPORT_PACKAGES, why: "the embedded database launcher manages a process; it knows no gateway code" },
  tools: { may: ["tools", "embedded-db"], forbiddenPackages: TRANSPORT_PACKAGES, why: "tool builders share only the launcher's executable lookup" },
  config: { may: ["config"], forbiddenPackages: [...TRANSPORT_PACKAGES, ...DRIVERS], why: "the configuration is a leaf: it parses values and knows no layer's vocabulary" },
  log: { may: ["log"], forbiddenPackages: [...TRANSPORT_PACKAGES, ...DRIVERS], why: "logging is a leaf" },
  health: { may: ["health"], forbiddenPackages: [...TRANSPORT_PACKAGES, ...DRIVERS], why: "the health status is a leaf" },
  reflection: { may: ["reflection"], forbiddenPackages: DRIVERS, why: "the descriptor index is a leaf" },
};

export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly specifier: string;
  readonly message: string;
}

// Static imports and re-exports (also multi-line and type-only), side-effect imports and dynamic import().
const IMPORT = /^[ \t]*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']|^[ \t]*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

/** The layer a file of `root` belongs to: its folder under src/ (`main` for src/main.ts), else its top folder. */
export function layerOf(root: string, file: string): string {
  const inSrc = relative(join(root, "src"), file);
  if (!inSrc.startsWith("..")) {
    const parts = inSrc.split(sep);
    return parts.length === 1 ? (parts[0] ?? "").replace(/\.ts$/, "") : (parts[0] ?? "");
  }
  return relative(root, file).split(sep)[0] ?? "";
}

function packageMatches(specifier: string, pattern: string): boolean {
  if (pattern.endsWith("/*")) return specifier.startsWith(pattern.slice(0, -1));
  if (pattern.endsWith("*")) return specifier.startsWith(pattern.slice(0, -1));
  return specifier === pattern || specifier.startsWith(`${pattern}/`);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** Every violation of RULES by the files under `root`/src. */
export function checkBoundaries(root: string, rules: Readonly<Record<string, LayerRule>> = RULES): Violation[] {
  const violations: Violation[] = [];
  for (const file of sourceFiles(join(root, "src"))) {
    const from = layerOf(root, file);
    const shown = relative(root, file);
    const rule = rules[from];
    const text = readFileSync(file, "utf8");
    if (!rule) {
      violations.push({ file: shown, line: 1, specifier: "", message: `src/${from} is not a layer the rules know: add it to scripts/check-architecture.ts and docs/architecture.md` });
      continue;
    }
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? match[3] ?? "";
      const line = text.slice(0, match.index).split("\n").length;
      if (specifier.startsWith(".")) {
        const to = layerOf(root, resolve(dirname(file), specifier));
        if (rule.may !== "anything" && !rule.may.includes(to)) {
          violations.push({ file: shown, line, specifier, message: `${from} may not import ${to}: ${rule.why}` });
        }
      } else {
        const denied = rule.forbiddenPackages?.find((pattern) => packageMatches(specifier, pattern));
        if (denied) violations.push({ file: shown, line, specifier, message: `${from} may not import ${specifier}: ${rule.why}` });
      }
    }
  }
  return violations;
}

export const MAX_LINES = 300;
const SIZE_REASON = /^\/\/ Over 300 lines: \S/;

/** Files under `root`/src longer than MAX_LINES that do not say why in their first 20 lines. */
export function checkFileSizes(root: string): Violation[] {
  const violations: Violation[] = [];
  for (const file of sourceFiles(join(root, "src"))) {
    const lines = readFileSync(file, "utf8").split("\n");
    const count = lines.at(-1) === "" ? lines.length - 1 : lines.length;
    if (count > MAX_LINES && !lines.slice(0, 20).some((line) => SIZE_REASON.test(line))) {
      violations.push({
        file: relative(root, file),
        line: MAX_LINES + 1,
        specifier: "",
        message: `${count} lines: split it by concept, or state why it stays whole in a "// Over 300 lines: <reason>" comment at the top`,
      });
    }
  }
  return violations;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const violations = [...checkBoundaries(root), ...checkFileSizes(root)];
  for (const v of violations) process.stdout.write(`${v.file}:${v.line}: ${v.specifier ? `"${v.specifier}": ` : ""}${v.message}\n`);
  if (violations.length > 0) {
    process.stdout.write(`\narchitecture: ${violations.length} violation(s); the rules are in docs/architecture.md\n`);
    process.exit(1);
  }
  process.stdout.write(`architecture: ${sourceFiles(join(root, "src")).length} files, import boundaries and sizes kept, 0 exceptions\n`);
}
