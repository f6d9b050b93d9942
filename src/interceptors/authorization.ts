import { accessRuleOf } from "../access/access-rules.ts";
import type { FreshMfaVerifier } from "../domain/auth/authenticator.ts";
import { DomainError } from "../domain/errors.ts";
import { clientKey, principalKey, requestIdKey } from "../handlers/context-keys.ts";
import type { CallStep } from "./call-step.ts";

/**
 * Enforces the access rule each method declares in the proto: audience and permission, session-only
 * (program credentials — API keys and tokens exchanged for them — refused on account and session
 * management), then fresh MFA. Fail closed: a method without a usable rule is denied to everyone.
 * Resource-level checks ("is this key yours?") belong to the domain.
 */
export function createAuthorizationStep(freshMfa: FreshMfaVerifier): CallStep {
  return {
    enter(req) {
      const rule = accessRuleOf(req.method);
      if (rule === undefined) {
        throw new DomainError("permission_denied", "this method declares no access rule", { reason: "no_access_rule" });
      }
      if (rule.audience === "public") return;
      const principal = req.contextValues.get(principalKey);
      if (principal === undefined) throw new DomainError("unauthenticated", "credentials required");
      if (rule.audience === "permission" && !principal.permissions.has(rule.permission)) {
        throw new DomainError("permission_denied", `permission ${rule.permission} required`);
      }
      // Before fresh MFA: a program credential must not even get to try a code here.
      if (rule.sessionOnly && principal.kind === "api_key" && !(rule.programPermission !== undefined && principal.permissions.has(rule.programPermission))) {
        throw new DomainError("permission_denied", "this method needs a person's session: API keys and tokens exchanged for them may not call it");
      }
      if (!rule.freshMfa) return;
      const code = req.header.get("x-mfa-code") ?? (req.stream ? undefined : mfaCodeField(req.message));
      const refused = () => new DomainError("permission_denied", "a fresh MFA code is required", { reason: "fresh_mfa_required" });
      if (!code) throw refused();
      return freshMfa.verify(principal, code, { client: req.contextValues.get(clientKey), requestId: req.contextValues.get(requestIdKey) }).then((fresh) => {
        if (!fresh) throw refused();
      });
    },
  };
}

function mfaCodeField(message: object): string | undefined {
  const value = (message as { mfaCode?: unknown }).mfaCode;
  return typeof value === "string" && value !== "" ? value : undefined;
}
