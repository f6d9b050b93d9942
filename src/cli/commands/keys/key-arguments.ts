import { create } from "@bufbuild/protobuf";
import { DurationSchema, type Duration } from "@bufbuild/protobuf/wkt";
import { ApiKeyStatus, RateLimitTier } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { CommandError } from "../../command-error.ts";
import { enumFromLabel } from "../../output/enum-labels.ts";

const UNIT_SECONDS: Readonly<Record<string, number>> = { w: 604_800, d: 86_400, h: 3_600, m: 60, s: 1 };
// Ten years: far beyond any server maximum, but small enough that no arithmetic overflows.
const MAX_DURATION_SECONDS = 10 * 365 * 86_400;

/**
 * A duration like `30d`, `12h`, `90m`, `45s`, `2w` or a combination (`1h30m`) as a protobuf Duration;
 * a usage error (exit 2) otherwise. Whether the server accepts it (maximum lifetime, grace ≤ 24 h) is the
 * server's to say.
 */
export function parseDuration(text: string, flag: string): Duration {
  const trimmed = text.trim().toLowerCase();
  if (!/^(\d{1,9}[wdhms])+$/.test(trimmed)) throw new CommandError(`${flag} takes a duration like 30d, 12h, 90m, 45s or 1h30m`, 2);
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([wdhms])/g)) seconds += Number(amount) * (UNIT_SECONDS[unit!] ?? 0);
  if (seconds > MAX_DURATION_SECONDS) throw new CommandError(`${flag} is too long`, 2);
  return create(DurationSchema, { seconds: BigInt(seconds) });
}

const STATUSES = [ApiKeyStatus.ACTIVE, ApiKeyStatus.ROTATED, ApiKeyStatus.REVOKED, ApiKeyStatus.EXPIRED] as const;
const TIERS = [RateLimitTier.BASIC, RateLimitTier.STANDARD, RateLimitTier.PREMIUM] as const;

/** `--status active|rotated|revoked|expired`. */
export function parseStatus(text: string): ApiKeyStatus {
  const status = enumFromLabel(ApiKeyStatus, text, STATUSES);
  if (status === undefined) throw new CommandError("--status must be active, rotated, revoked or expired", 2);
  return status;
}

/** `--tier basic|standard|premium`. */
export function parseTier(text: string): RateLimitTier {
  const tier = enumFromLabel(RateLimitTier, text, TIERS);
  if (tier === undefined) throw new CommandError("--tier must be basic, standard or premium", 2);
  return tier;
}

/** Repeated `--metadata key=value` as a map; a key given twice is a usage error rather than a silent overwrite. */
export function parseMetadata(pairs: readonly string[]): Record<string, string> {
  // A Map, not an object literal: a key like "__proto__" must be an ordinary key.
  const metadata = new Map<string, string>();
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new CommandError("--metadata takes key=value", 2);
    const key = pair.slice(0, at);
    if (metadata.has(key)) throw new CommandError(`--metadata ${JSON.stringify(key.slice(0, 64))} is given twice`, 2);
    metadata.set(key, pair.slice(at + 1));
  }
  return Object.fromEntries(metadata);
}

/** Whose keys: `--user ID` or `--all` (not both), as the request fields `user_id` / `all_users`. */
export function parseOwnerSelection(values: { user?: string | undefined; all?: boolean | undefined }): { userId: string; allUsers: boolean } {
  if (values.user !== undefined && values.all) throw new CommandError("give either --user or --all, not both", 2);
  if (values.user !== undefined && values.user.trim() === "") throw new CommandError("--user needs a user id", 2);
  return { userId: values.user?.trim() ?? "", allUsers: values.all === true };
}

/** A key id argument: non-empty, no whitespace (a pasted key id with a newline is a usage error, not a NOT_FOUND). */
export function parseKeyId(text: string | undefined): string {
  const id = text?.trim() ?? "";
  if (id === "" || /\s/.test(id)) throw new CommandError("the key ID must be a single word", 2);
  return id;
}

/** `--reason TEXT`, required and non-blank for revocations (the server records it). */
export function parseReason(text: string | undefined): string {
  if (text === undefined || text.trim() === "") throw new CommandError("--reason is required", 2);
  return text.trim();
}
