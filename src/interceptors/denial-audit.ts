import { auditedCaller } from "../domain/audit/audit-caller.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { DomainError } from "../domain/errors.ts";
import { clientKey, principalKey, requestIdKey } from "../handlers/context-keys.ts";
import type { CallStep } from "./call-step.ts";

/**
 * Every call refused for lack of permission (the access rule, a missing fresh MFA code, or a handler's
 * own check such as scope widening) becomes an `access.denied` audit event: who, which method, from
 * where, why. Bursts of these are what GetSuspiciousActivity reports as probing. Written in the
 * background (batched); the refusal itself never waits for it.
 */
export function createDenialAuditStep(audit: AuditRecorder): CallStep {
  return {
    fail(error, req) {
      if (error instanceof DomainError && error.code === "permission_denied") {
        audit.record({
          type: "access.denied",
          outcome: "denied",
          ...auditedCaller({ principal: req.contextValues.get(principalKey), client: req.contextValues.get(clientKey), requestId: req.contextValues.get(requestIdKey) }),
          method: `/${req.service.typeName}/${req.method.name}`,
          reason: error.reason ?? error.message,
        });
      }
      return error;
    },
  };
}
