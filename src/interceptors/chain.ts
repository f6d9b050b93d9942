import type { Interceptor } from "@connectrpc/connect";
import type { RateLimiter } from "../access/rate-limiter.ts";
import type { Logger } from "../log/logger.ts";
import type { Authenticator, FreshMfaVerifier } from "../domain/auth/authenticator.ts";
import { createAuthenticationStep } from "./authentication.ts";
import { createAuthorizationStep } from "./authorization.ts";
import type { AuditRecorder } from "../domain/audit/audit-recorder.ts";
import { createStepsInterceptor } from "./call-step.ts";
import { createDenialAuditStep } from "./denial-audit.ts";
import { createErrorMappingStep } from "./error-mapping.ts";
import { createFailedAuthenticationStep, type FailedAuthenticationBudget } from "./failed-authentication.ts";
import { createLoggingStep } from "./logging.ts";
import { createRateLimitStep } from "./rate-limit.ts";
import { createRequestIdStep } from "./request-id.ts";

export interface InterceptorDeps {
  readonly logger: Logger;
  readonly authenticator: Authenticator;
  readonly freshMfa: FreshMfaVerifier;
  readonly rateLimiter: RateLimiter;
  /** Where refusals for lack of permission are recorded; without it they are only logged. */
  readonly audit?: AuditRecorder;
  /** The per-address budget of failed authentications; without it failures cost nothing (tests only). */
  readonly failedAuthentications?: FailedAuthenticationBudget;
}

/**
 * The interceptor chain of every RPC, in order: the first is the outermost. This is the one place the
 * order is decided. Each concern is a step (call-step.ts) with the semantics of one interceptor of its
 * own, and the steps run inside one connect-es interceptor: one async layer per call instead of eight.
 *
 * 1. request id — first, so everything after it (logs, errors, audit) can name the call.
 * 2. logging — outside error mapping, so it logs the code the client actually receives.
 * 3. error mapping — turns everything thrown below into a safe status (INTERNAL carries only the id).
 *    denial audit — records every PERMISSION_DENIED raised below (rule, fresh MFA or handler).
 *    failed authentication — per client address: a spent budget refuses calls presenting a secret
 *    before authentication looks at them (no database work); every UNAUTHENTICATED below spends it.
 * 4. authentication — credentials → principal in the context; required unless the method is public.
 * 5. authorization — the method's declared access rule (fail closed), permissions, fresh MFA.
 * 6. rate limit — per principal (or IP when anonymous) and rate-limit class; after authentication so
 *    a caller is counted as who they are, after authorization so denied calls don't spend budget.
 */
export function createInterceptorChain(deps: InterceptorDeps): Interceptor[] {
  return [
    createStepsInterceptor([
      createRequestIdStep(),
      createLoggingStep(deps.logger),
      createErrorMappingStep(deps.logger),
      ...(deps.audit ? [createDenialAuditStep(deps.audit)] : []),
      ...(deps.failedAuthentications ? [createFailedAuthenticationStep(deps.failedAuthentications)] : []),
      createAuthenticationStep(deps.authenticator),
      createAuthorizationStep(deps.freshMfa),
      createRateLimitStep(deps.rateLimiter),
    ]),
  ];
}
