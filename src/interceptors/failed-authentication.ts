import { Code, ConnectError } from "@connectrpc/connect";
import { accessRuleOf } from "../access/access-rules.ts";
import type { RateLimiter } from "../access/rate-limiter.ts";
import { ipKey } from "../domain/auth/login-throttle.ts";
import { DomainError } from "../domain/errors.ts";
import { clientKey, credentialHeadersOf } from "../handlers/context-keys.ts";
import type { CallRequest, CallStep } from "./call-step.ts";

/** The one budget class of the failed-authentication limiter. */
export type FailedAuthenticationBudget = RateLimiter<"failed_authentication">;

/**
 * Makes failed authentication cost the guesser: every call that presents a secret — credentials in
 * `authorization` or `x-api-key`, or a call to a credential-checking method (Login, Refresh,
 * ExchangeApiKey, …) — and is answered UNAUTHENTICATED spends one unit of its client address's budget
 * (IPv6 per /64). Once the budget is spent, such calls from that address are refused with
 * RESOURCE_EXHAUSTED (reason RATE_LIMITED, retry_after_ms) before authentication, so before any
 * database work; calls that present nothing (health checks, JWKS) still pass. The budget refills
 * continuously and lives in memory, per instance, like the rate limits.
 */
export function createFailedAuthenticationStep(budget: FailedAuthenticationBudget): CallStep {
  const presentsSecret = (req: CallRequest) => {
    const { authorization, apiKey } = credentialHeadersOf(req.contextValues, req.header);
    return authorization !== undefined || apiKey !== undefined || accessRuleOf(req.method)?.rateLimit === "credential";
  };
  return {
    enter(req) {
      if (!presentsSecret(req)) return;
      const state = budget.peek("failed_authentication", ipKey(req.contextValues.get(clientKey).ip));
      if (!state.allowed) {
        throw new DomainError("resource_exhausted", "too many failed authentications from this address; try again later", { reason: "rate_limited", retryAfterMs: state.retryAfterMs });
      }
    },
    fail(error, req) {
      const unauthenticated = (error instanceof DomainError && error.code === "unauthenticated") || (error instanceof ConnectError && error.code === Code.Unauthenticated);
      if (unauthenticated && presentsSecret(req)) budget.take("failed_authentication", ipKey(req.contextValues.get(clientKey).ip));
      return error;
    },
  };
}
