import { BlockList, isIP } from "node:net";
import { DomainError } from "../errors.ts";

const MAX_CIDRS = 32;

/**
 * Validates and normalises the allowed-client-network list of a key: IPv4 or IPv6 CIDRs (a bare
 * address means a single host). Anything else is INVALID_ARGUMENT naming the entry's position.
 */
export function normaliseCidrs(cidrs: readonly string[]): string[] {
  if (cidrs.length > MAX_CIDRS) throw new DomainError("invalid_argument", `at most ${MAX_CIDRS} allowed_cidrs`);
  const out = new Set<string>();
  cidrs.forEach((raw, index) => {
    const parsed = parseCidr(raw.trim());
    if (!parsed) throw new DomainError("invalid_argument", `allowed_cidrs[${index}] is not an IPv4 or IPv6 CIDR`);
    out.add(`${parsed.address}/${parsed.prefix}`);
  });
  return [...out];
}

/** A matcher for a normalised CIDR list; an empty list allows every address. */
export function createNetworkMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  if (cidrs.length === 0) return () => true;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (parsed) list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return (ip) => {
    const address = unmapped(ip);
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 4 ? "ipv4" : "ipv6");
  };
}

function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  if (text.length === 0 || text.length > 64) return undefined;
  const slash = text.indexOf("/");
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const digits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(digits)) return undefined;
    prefix = Number(digits);
    if (prefix > max) return undefined;
  }
  return { address: address.toLowerCase(), prefix, family: family === 4 ? "ipv4" : "ipv6" };
}

// A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; match them against IPv4 networks.
function unmapped(ip: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return match?.[1] ?? ip;
}
