import { hkdfSync } from "node:crypto";

/**
 * The audit log's keys, derived from the encryption key every instance sharing the database shares:
 * `seal` (HMAC sealing each chained event) and `cursor` (HMAC of page tokens). Separate HKDF labels keep
 * one use's output useless for the other.
 */
export function deriveAuditKeys(encryptionKey: Uint8Array): { seal: Buffer; cursor: Buffer } {
  const derive = (label: string) => Buffer.from(hkdfSync("sha256", encryptionKey, Buffer.alloc(0), `portcullis audit ${label} v1`, 32));
  return { seal: derive("seal"), cursor: derive("cursor") };
}
