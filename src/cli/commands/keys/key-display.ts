import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ApiKeyStatus, RateLimitTier, type ApiKey } from "../../../../gen/portcullis/v1/api_key_pb.js";
import { enumLabel } from "../../output/enum-labels.ts";
import { formatFields, formatTable } from "../../output/table.ts";

/** A timestamp for people: `2026-11-23 10:51 UTC`, or "-" when unset. */
export function formatTime(timestamp: Timestamp | undefined): string {
  if (timestamp === undefined) return "-";
  return `${timestampDate(timestamp).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

const status = (key: ApiKey) => enumLabel(ApiKeyStatus, key.status);
const tier = (key: ApiKey) => enumLabel(RateLimitTier, key.rateLimitTier);

/** The `keys list` table; the owner column only when keys of several users may be listed. */
export function formatKeyTable(keys: readonly ApiKey[], options: { showOwner: boolean }): string {
  const headers = ["ID", "NAME", "PREFIX", "STATUS", "SCOPES", "TIER", "EXPIRES", "LAST USED", "USES"];
  if (options.showOwner) headers.splice(2, 0, "OWNER");
  const rows = keys.map((key) => {
    const row = [key.id, key.name, key.prefix, status(key), key.scopes.join(","), tier(key), key.expiresAt ? formatTime(key.expiresAt) : "never", formatTime(key.lastUsedAt), String(key.usageCount)];
    if (options.showOwner) row.splice(2, 0, key.ownerUserId);
    return row;
  });
  return formatTable(headers, rows);
}

/** Every field of one key, one per line (`keys get`, and after create / rotate / revoke). */
export function formatKeyDetails(key: ApiKey): string {
  const fields: Array<[string, string]> = [
    ["ID", key.id],
    ["Name", key.name],
    ["Prefix", key.prefix],
    ["Owner", key.ownerUserId],
    ["Status", status(key)],
    ["Scopes", key.scopes.join(", ") || "-"],
    ["Tier", tier(key)],
    ["Allowed CIDRs", key.allowedCidrs.join(", ") || "any address"],
    ["Created", formatTime(key.createdAt)],
    ["Expires", key.expiresAt ? formatTime(key.expiresAt) : "never"],
    ["Last used", key.lastUsedAt ? `${formatTime(key.lastUsedAt)}${key.lastUsedIp ? ` from ${key.lastUsedIp}` : ""}` : "never"],
    ["Uses", String(key.usageCount)],
  ];
  const metadata = Object.entries(key.metadata).sort(([a], [b]) => a.localeCompare(b));
  if (metadata.length > 0) fields.push(["Metadata", metadata.map(([k, v]) => `${k}=${v}`).join(", ")]);
  if (key.parentKeyId) fields.push(["Replaces", key.parentKeyId]);
  if (key.rotatedAt) fields.push(["Rotated", formatTime(key.rotatedAt)], ["Grace until", formatTime(key.graceExpiresAt)]);
  if (key.revokedAt) fields.push(["Revoked", formatTime(key.revokedAt)], ["Reason", key.revokeReason]);
  return formatFields(fields);
}

/**
 * The block shown once after CreateApiKey / RotateApiKey: the secret on a line of its own, with the
 * warning that it cannot be shown again, then the key's record.
 */
export function formatNewSecret(heading: string, secret: string, key: ApiKey | undefined): string {
  return `${heading}\n\nAPI key (shown only this once; it cannot be retrieved again, so store it now):\n\n  ${secret}\n\n${key ? formatKeyDetails(key) : ""}`;
}
