import { accessRuleOf } from "../access/access-rules.ts";
import type { RateLimiter } from "../access/rate-limiter.ts";
import { TIER_RATE_SCALE } from "../domain/api-keys/api-key-record.ts";
import { DomainError } from "../domain/errors.ts";
import { clientKey, principalKey } from "../handlers/context-keys.ts";
import type { CallStep } from "./call-step.ts";

/**
 * Counts each call (a stream counts once, when it opens) against the budget of its method's rate-limit
 * class, per principal (an API key's budget scaled by its tier), or per client IP for anonymous calls. Over budget: RESOURCE_EXHAUSTED with
 * ErrorInfo reason RATE_LIMITED and retry_after_ms.
 */
export function createRateLimitStep(limiter: RateLimiter): CallStep {
  return {
    enter(req) {
      const rateClass = accessRuleOf(req.method)?.rateLimit ?? "default";
      const principal = req.contextValues.get(principalKey);
      const subject = principal ? `${principal.kind}:${principal.id}` : `ip:${req.contextValues.get(clientKey).ip}`;
      const scale = principal?.rateLimitTier ? TIER_RATE_SCALE[principal.rateLimitTier] : 1;
      const decision = limiter.take(rateClass, subject, scale);
      if (!decision.allowed) {
        throw new DomainError("resource_exhausted", "rate limit exceeded", {
          reason: "rate_limited",
          retryAfterMs: decision.retryAfterMs,
        });
      }
    },
  };
}
