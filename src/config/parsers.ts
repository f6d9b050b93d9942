import { isAbsolute, resolve } from "node:path";
import { ConfigError } from "./config-error.ts";

/**
 * Parsers of configuration values, one per kind of value. Each receives the trimmed, non-empty raw text
 * and the variable's name (for the error), and throws ConfigError naming the variable; none echoes a
 * value that may be secret.
 */
export type Parser<T> = (raw: string, name: string, cwd: string) => T;

/** A whole number in [min, max], times `unit` (1000 turns seconds into milliseconds). */
export function integer(min: number, max: number, unit = 1): Parser<number> {
  return (raw, name) => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) throw new ConfigError(name, `must be a whole number from ${min} to ${max}`);
    return value * unit;
  };
}

export const boolean: Parser<boolean> = (raw, name) => {
  const lower = raw.toLowerCase();
  if (["true", "1", "yes", "on"].includes(lower)) return true;
  if (["false", "0", "no", "off"].includes(lower)) return false;
  throw new ConfigError(name, "must be true or false");
};

/** One of `allowed`, case-insensitively. */
export function oneOf<T extends string>(allowed: readonly T[]): Parser<T> {
  return (raw, name) => {
    const lower = raw.toLowerCase();
    const found = allowed.find((a) => a === lower);
    if (found === undefined) throw new ConfigError(name, `must be one of ${allowed.join(", ")}`);
    return found;
  };
}

/** A path, made absolute against the working directory. */
export const path: Parser<string> = (raw, _name, cwd) => (isAbsolute(raw) ? raw : resolve(cwd, raw));

// Hostnames and IPv4/IPv6 literals; brackets are not part of a listen address.
export const host: Parser<string> = (raw, name) => {
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(raw)) throw new ConfigError(name, "must be a host name or IP address");
  return raw;
};

export const mongoUri: Parser<string> = (raw, name) => {
  // Never echo the value: it may carry a password.
  if (!/^mongodb(\+srv)?:\/\/\S+$/.test(raw)) throw new ConfigError(name, "must start with mongodb:// or mongodb+srv://");
  return raw;
};

/** 1-256 printable ASCII characters without spaces (token issuer and audience). */
export const text: Parser<string> = (raw, name) => {
  if (!/^[\x21-\x7e]{1,256}$/.test(raw)) throw new ConfigError(name, "must be 1-256 printable ASCII characters without spaces");
  return raw;
};

/** 32 bytes, base64 (either alphabet). */
export const key: Parser<Buffer> = (raw, name) => {
  // Never echo the value.
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(raw) ? Buffer.from(raw, raw.includes("-") || raw.includes("_") ? "base64url" : "base64") : undefined;
  if (bytes?.length !== 32) throw new ConfigError(name, "must be 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)");
  return bytes;
};

export const dbName: Parser<string> = (raw, name) => {
  if (!/^[A-Za-z0-9_-]{1,38}$/.test(raw)) throw new ConfigError(name, "must be 1-38 letters, digits, _ or -");
  return raw;
};

/** Comma-separated browser origins (scheme, host and port only). */
export const origins: Parser<readonly string[]> = (raw, name) =>
  Object.freeze(
    raw.split(",").map((origin) => {
      const trimmed = origin.trim();
      let url: URL | undefined;
      try {
        url = new URL(trimmed);
      } catch {
        url = undefined;
      }
      if (!url || !["http:", "https:"].includes(url.protocol) || url.origin !== trimmed) {
        throw new ConfigError(name, "must be a comma-separated list of origins like https://app.example.com");
      }
      return url.origin;
    }),
  );

/** Comma-separated entries, trimmed; `off` means none. What an entry means is for its user to check. */
export const list: Parser<readonly string[]> = (raw) => (raw.toLowerCase() === "off" ? [] : Object.freeze(raw.split(",").map((entry) => entry.trim())));

/** Text used as is (a value whose vocabulary another layer owns and checks, like the API-key prefix). */
export const word: Parser<string> = (raw) => raw;
