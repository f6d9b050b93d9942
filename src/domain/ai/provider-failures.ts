import { DomainError } from "../errors.ts";
import { ProviderError } from "./chat-provider.ts";

/**
 * The status a caller sees for a failed provider call, as the AiService contract says: UNAVAILABLE when
 * the provider is down, overloaded or refuses our credential (the caller can do nothing about our
 * credential, so it is not their PERMISSION_DENIED); DEADLINE_EXCEEDED when it does not answer in time;
 * NOT_FOUND for a model it does not know. The message is ours: a provider's body may echo the
 * credential, so none of it is ever passed on. Returns undefined for anything that is not a
 * ProviderError (the caller rethrows it as it is).
 */
export function providerFailure(error: unknown, provider: string, model: string): DomainError | undefined {
  if (!(error instanceof ProviderError)) return undefined;
  const status = error.status === undefined ? "" : ` (HTTP ${error.status})`;
  switch (error.kind) {
    case "unauthorized":
      return new DomainError("unavailable", `provider ${provider} refused its credential${status}; an administrator must replace it`);
    case "rate_limited":
      return new DomainError("unavailable", `provider ${provider} is rate limiting us; retry later`, error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs });
    case "server_error":
      return new DomainError("unavailable", `provider ${provider} failed${status}`);
    case "connection":
      return new DomainError("unavailable", `provider ${provider} cannot be reached`);
    case "timeout":
      return new DomainError("deadline_exceeded", `provider ${provider} did not answer in time`);
    case "bad_request":
      return new DomainError("invalid_argument", `provider ${provider} refused the request${status}`);
    case "model_not_found":
      return new DomainError("not_found", `provider ${provider} does not know model ${JSON.stringify(model)}`);
    case "malformed":
      return new DomainError("unavailable", `provider ${provider} sent an answer in an unknown format`);
    case "redirected":
      return new DomainError("unavailable", `provider ${provider} answered with a redirect${status}, which is not followed: check its baseUrl`);
  }
}

/** A short, provider-text-free label of a failure for audit events and logs. */
export function failureLabel(error: unknown): string {
  if (error instanceof ProviderError) return error.status === undefined ? error.kind : `${error.kind} (HTTP ${error.status})`;
  if (error instanceof DomainError) return error.code;
  return "internal";
}
