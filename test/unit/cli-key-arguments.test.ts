import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ApiKeySchema, ApiKeyStatus, RateLimitTier } from "../../gen/portcullis/v1/api_key_pb.js";
import { CommandError } from "../../src/cli/command-error.ts";
import { parseDuration, parseKeyId, parseMetadata, parseOwnerSelection, parseReason, parseStatus, parseTier } from "../../src/cli/commands/keys/key-arguments.ts";
import { formatKeyDetails, formatKeyTable, formatNewSecret } from "../../src/cli/commands/keys/key-display.ts";
import { formatTable } from "../../src/cli/output/table.ts";
import { printable } from "../../src/cli/output/terminal-text.ts";

/** The exit code and message of a usage error thrown by `fn`. */
function usage(fn: () => unknown): { exitCode: number; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CommandError);
    return { exitCode: (err as CommandError).exitCode, message: (err as CommandError).message };
  }
  throw new Error("expected a usage error");
}

describe("keys command arguments", () => {
  it("parses durations in weeks, days, hours, minutes and seconds, alone or combined", () => {
    expect(parseDuration("30d", "--expires-in").seconds).toBe(30n * 86_400n);
    expect(parseDuration("1h30m", "--grace").seconds).toBe(5_400n);
    expect(parseDuration("2w", "--expires-in").seconds).toBe(1_209_600n);
    expect(parseDuration(" 45S ", "--grace").seconds).toBe(45n);
    expect(parseDuration("0s", "--grace").seconds).toBe(0n);
  });

  it("refuses malformed or absurd durations as usage errors naming the flag", () => {
    for (const text of ["", "30", "d", "-1h", "1.5h", "1 h", "1y", "1h-", "9999999999d"]) {
      expect(
        usage(() => parseDuration(text, "--grace")),
        text,
      ).toMatchObject({ exitCode: 2, message: expect.stringMatching(/^--grace /) as unknown });
    }
    expect(usage(() => parseDuration("5000w", "--expires-in")).message).toBe("--expires-in is too long");
  });

  it("maps statuses and tiers from their lower-case labels, never to UNSPECIFIED", () => {
    expect(parseStatus("active")).toBe(ApiKeyStatus.ACTIVE);
    expect(parseStatus("REVOKED")).toBe(ApiKeyStatus.REVOKED);
    expect(parseStatus("expired")).toBe(ApiKeyStatus.EXPIRED);
    expect(parseTier("premium")).toBe(RateLimitTier.PREMIUM);
    for (const bad of ["unspecified", "", "activ", "0"]) {
      expect(usage(() => parseStatus(bad)).exitCode).toBe(2);
      expect(usage(() => parseTier(bad)).exitCode).toBe(2);
    }
  });

  it("parses metadata pairs, keeping '=' in values and refusing empty or repeated keys", () => {
    expect(parseMetadata(["team=search", "query=a=b", "empty="])).toEqual({ team: "search", query: "a=b", empty: "" });
    expect(usage(() => parseMetadata(["novalue"])).message).toBe("--metadata takes key=value");
    expect(usage(() => parseMetadata(["=x"])).exitCode).toBe(2);
    expect(usage(() => parseMetadata(["a=1", "a=2"])).message).toBe('--metadata "a" is given twice');
    // A key named like an Object.prototype member is an ordinary key.
    expect(parseMetadata(["__proto__=x", "constructor=y"])).toEqual(JSON.parse('{"__proto__":"x","constructor":"y"}'));
  });

  it("selects whose keys by --user or --all, not both; requires a key id and a reason", () => {
    expect(parseOwnerSelection({})).toEqual({ userId: "", allUsers: false });
    expect(parseOwnerSelection({ user: "u-1" })).toEqual({ userId: "u-1", allUsers: false });
    expect(parseOwnerSelection({ all: true })).toEqual({ userId: "", allUsers: true });
    expect(usage(() => parseOwnerSelection({ user: "u-1", all: true })).exitCode).toBe(2);
    expect(usage(() => parseOwnerSelection({ user: " " })).exitCode).toBe(2);
    expect(parseKeyId(" k-1 ")).toBe("k-1");
    for (const bad of [undefined, "", "k 1", "k-1\nrm"]) expect(usage(() => parseKeyId(bad)).exitCode).toBe(2);
    expect(parseReason(" leaked in CI ")).toBe("leaked in CI");
    for (const bad of [undefined, "", "   "]) expect(usage(() => parseReason(bad)).message).toBe("--reason is required");
  });
});

describe("keys command output", () => {
  const key = create(ApiKeySchema, {
    id: "k-1",
    name: "search\u001b[2Jbot",
    prefix: "sk_ab12",
    ownerUserId: "u-1",
    scopes: ["ai.query", "keys.read"],
    status: ApiKeyStatus.ACTIVE,
    rateLimitTier: RateLimitTier.STANDARD,
    metadata: { team: "search", env: "prod" },
    createdAt: timestampFromDate(new Date("2026-11-01T08:00:00Z")),
    usageCount: 42n,
  });

  it("aligns table columns without trailing blanks", () => {
    expect(
      formatTable(
        ["ID", "NAME"],
        [
          ["a", "first"],
          ["long-id", "x"],
        ],
      ),
    ).toBe("ID       NAME\na        first\nlong-id  x\n");
  });

  it("neutralises terminal escapes and line breaks coming from the server", () => {
    expect(printable("a\u001b[31mred\nb\u202eevil")).toBe("a\uFFFD[31mred\uFFFDb\uFFFDevil");
    const table = formatKeyTable([key], { showOwner: false });
    expect(table).not.toContain("\u001b");
    expect(table.split("\n")[0]).toBe("ID   NAME           PREFIX   STATUS  SCOPES              TIER      EXPIRES  LAST USED  USES");
    expect(table.split("\n")[1]).toBe("k-1  search\uFFFD[2Jbot  sk_ab12  active  ai.query,keys.read  standard  never    -          42");
    expect(formatKeyTable([key], { showOwner: true }).split("\n")[0]).toMatch(/^ID {3}NAME {11}OWNER {2}PREFIX/);
  });

  it("shows every field of a key, metadata sorted, and the secret once with its warning", () => {
    const details = formatKeyDetails(key);
    expect(details).toContain("Created:       2026-11-01 08:00 UTC\n");
    expect(details).toContain("Expires:       never\n");
    expect(details).toContain("Allowed CIDRs: any address\n");
    expect(details).toContain("Metadata:      env=prod, team=search\n");
    expect(details).not.toContain("Revoked");
    const block = formatNewSecret("Created.", "sk_secret_value", key);
    expect(block).toMatch(/^Created\.\n\nAPI key \(shown only this once; it cannot be retrieved again, so store it now\):\n\n {2}sk_secret_value\n\nID: /);
  });
});
