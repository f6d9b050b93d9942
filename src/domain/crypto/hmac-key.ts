import { createSecretKey, type KeyObject } from "node:crypto";

const keyObjects = new WeakMap<object, KeyObject>();

/**
 * The KeyObject of an HMAC key, made once per key buffer and kept while the buffer lives. Handing
 * `createHmac` a Buffer makes Node build a new key object on every call, which on a per-request path
 * (an API key's secret check, an audit event's seal) is work repeated for nothing. Callers must not
 * mutate the buffer afterwards (none does: keys are derived once at start and kept).
 */
export function hmacKeyOf(key: Uint8Array): KeyObject {
  let keyObject = keyObjects.get(key);
  if (!keyObject) {
    keyObject = createSecretKey(key);
    keyObjects.set(key, keyObject);
  }
  return keyObject;
}
