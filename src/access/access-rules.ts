import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { access, Audience, RateLimitClass } from "../../gen/portcullis/v1/options_pb.js";
import type { RateLimitClassName } from "../config/config.ts";
import { ALL_PERMISSIONS } from "../domain/permissions.ts";

/**
 * Who besides a person's own session may call a method: `sessionOnly` false admits every principal
 * the audience admits; true refuses program credentials (API keys and tokens from ExchangeApiKey)
 * unless they hold `programPermission`.
 */
export interface ProgramAccess {
  readonly sessionOnly: boolean;
  /** With `sessionOnly`, the permission that admits a program credential anyway; undefined: none does. */
  readonly programPermission?: string | undefined;
}

/** A method's access rule, normalised from the `(portcullis.v1.access)` option. */
export type AccessRule = ProgramAccess &
  (
    | { readonly audience: "public"; readonly freshMfa: boolean; readonly rateLimit: RateLimitClassName }
    | { readonly audience: "authenticated"; readonly freshMfa: boolean; readonly rateLimit: RateLimitClassName }
    | {
        readonly audience: "permission";
        readonly permission: string;
        readonly freshMfa: boolean;
        readonly rateLimit: RateLimitClassName;
      }
  );

/**
 * Standard services we serve but whose protos we don't own, so their rules are declared here rather than
 * as options. Health checks and reflection are public: load balancers and grpcurl call them without
 * credentials, and they reveal only what the published API already documents.
 */
const INFRASTRUCTURE_RULES: ReadonlyMap<string, AccessRule> = new Map([
  ["grpc.health.v1.Health", { audience: "public", freshMfa: false, rateLimit: "infrastructure", sessionOnly: false }],
  ["grpc.reflection.v1.ServerReflection", { audience: "public", freshMfa: false, rateLimit: "infrastructure", sessionOnly: false }],
  ["grpc.reflection.v1alpha.ServerReflection", { audience: "public", freshMfa: false, rateLimit: "infrastructure", sessionOnly: false }],
]);

const RATE_LIMIT_NAMES: Readonly<Record<RateLimitClass, RateLimitClassName>> = {
  [RateLimitClass.UNSPECIFIED]: "default",
  [RateLimitClass.DEFAULT]: "default",
  [RateLimitClass.CREDENTIAL]: "credential",
  [RateLimitClass.EXPENSIVE]: "expensive",
  [RateLimitClass.ADMIN]: "admin",
  [RateLimitClass.INFRASTRUCTURE]: "infrastructure",
};

const cache = new WeakMap<DescMethod, AccessRule | null>();

/**
 * Returns the access rule a method declares, or undefined when it declares none (or an unusable one:
 * unspecified audience, a permission rule without a known permission). Undefined means deny.
 */
export function accessRuleOf(method: DescMethod): AccessRule | undefined {
  let rule = cache.get(method);
  if (rule === undefined) {
    rule = readRule(method) ?? null;
    cache.set(method, rule);
  }
  return rule ?? undefined;
}

function readRule(method: DescMethod): AccessRule | undefined {
  const infrastructure = INFRASTRUCTURE_RULES.get(method.parent.typeName);
  if (infrastructure) return infrastructure;
  if (!hasOption(method, access)) return undefined;
  const option = getOption(method, access);
  const freshMfa = option.freshMfa;
  const rateLimit = RATE_LIMIT_NAMES[option.rateLimit] ?? "default";
  const program = programAccess(option.sessionOnly, option.programPermission);
  if (program === undefined) return undefined;
  switch (option.audience) {
    case Audience.PUBLIC:
      // A public method asking for a fresh MFA code or a session is contradictory: deny rather than guess.
      return freshMfa || program.sessionOnly ? undefined : { audience: "public", freshMfa, rateLimit, ...program };
    case Audience.AUTHENTICATED:
      return { audience: "authenticated", freshMfa, rateLimit, ...program };
    case Audience.PERMISSION:
      if (!ALL_PERMISSIONS.has(option.permission)) return undefined;
      return { audience: "permission", permission: option.permission, freshMfa, rateLimit, ...program };
    default:
      return undefined;
  }
}

/** The session-only part of a rule; undefined when it is unusable (an exemption without the rule, or an unknown permission). */
function programAccess(sessionOnly: boolean, programPermission: string): ProgramAccess | undefined {
  if (programPermission === "") return { sessionOnly };
  if (!sessionOnly || !ALL_PERMISSIONS.has(programPermission)) return undefined;
  return { sessionOnly, programPermission };
}
