import type { AuditRecorder } from "./audit-recorder.ts";
import { severityAtLeast, type Finding, type FindingKind, type Severity } from "./suspicious-activity.ts";

/** What an automatic response may do. */
export type ResponseActionName = "lock_account" | "revoke_session" | "revoke_api_key";
export const RESPONSE_ACTIONS: readonly ResponseActionName[] = ["lock_account", "revoke_session", "revoke_api_key"];

/** Which action a finding kind may trigger, by what its subject is (a user, a session, an API key). */
export const ACTIONS_FOR_KIND: Readonly<Record<FindingKind, readonly ResponseActionName[]>> = {
  failed_logins_per_user: ["lock_account"],
  failed_logins_per_ip: [],
  refresh_token_reuse: ["revoke_session"],
  mfa_failures: ["lock_account"],
  permission_denied_burst: ["lock_account", "revoke_api_key"],
  api_key_many_ips: ["revoke_api_key"],
  login_from_new_ip: ["lock_account"],
  emergency_action: [],
};

/** A configured automatic response: findings of `kind` at `minSeverity` or above trigger `action`. */
export interface ResponseRule {
  readonly kind: FindingKind;
  readonly action: ResponseActionName;
}

/** Why an action is taken, carried into the action's own audit event. */
export interface ResponseCause {
  readonly kind: FindingKind;
  readonly severity: Severity;
  readonly subject: string;
  readonly sampleEventIds: readonly string[];
}

/**
 * The actions, implemented over account locks, sessions and the API-key lifecycle
 * (response-actions.ts). Each answers whether it changed anything (false: unknown subject, already done).
 */
export interface ResponseActions {
  lockAccount(userId: string, durationMs: number, cause: ResponseCause): Promise<boolean>;
  revokeSessionFamily(sessionId: string, cause: ResponseCause): Promise<boolean>;
  /** Absent where no API-key service is wired (some tests); a policy naming revoke_api_key is then refused at start. */
  revokeApiKey?: ((keyId: string, cause: ResponseCause) => Promise<boolean>) | undefined;
}

export interface AutoResponsePolicy {
  readonly rules: readonly ResponseRule[];
  readonly minSeverity: Severity;
  readonly lockDurationMs: number;
}

/**
 * Checks a policy against the available actions; throws a one-line Error naming the problem (at start,
 * so that a policy is never silently ignored).
 */
export function checkPolicy(policy: AutoResponsePolicy, actions: ResponseActions): void {
  for (const rule of policy.rules) {
    if (!ACTIONS_FOR_KIND[rule.kind].includes(rule.action)) {
      throw new Error(`PORTCULLIS_AUDIT_AUTO_RESPONSE: ${rule.action} cannot answer ${rule.kind} (its subject is not what ${rule.action} acts on)`);
    }
    if (rule.action === "revoke_api_key" && !actions.revokeApiKey) {
      throw new Error("PORTCULLIS_AUDIT_AUTO_RESPONSE: revoke_api_key needs the API-key service, which this gateway does not provide");
    }
  }
}

/**
 * Turns findings into actions according to the policy. Each action is audited as `audit.auto_response`
 * naming the finding (kind, severity, subject, sample events) that caused it; each (rule, subject) is acted
 * on once per process, so a finding that persists over several evaluations is not acted on again.
 */
export function createAutoResponder(deps: { policy: AutoResponsePolicy; actions: ResponseActions; audit: AuditRecorder }) {
  const done = new Set<string>();
  return async (findings: readonly Finding[]): Promise<number> => {
    let taken = 0;
    for (const finding of findings) {
      if (!severityAtLeast(finding.severity, deps.policy.minSeverity)) continue;
      for (const rule of deps.policy.rules) {
        if (rule.kind !== finding.kind) continue;
        const key = `${rule.kind}:${rule.action}:${finding.subject}`;
        if (done.has(key)) continue;
        done.add(key);
        const cause: ResponseCause = { kind: finding.kind, severity: finding.severity, subject: finding.subject, sampleEventIds: finding.sampleEventIds };
        let changed = false;
        let outcome: "success" | "failure" | "error" = "success";
        try {
          if (rule.action === "lock_account") changed = await deps.actions.lockAccount(finding.subject, deps.policy.lockDurationMs, cause);
          else if (rule.action === "revoke_session") changed = await deps.actions.revokeSessionFamily(finding.subject, cause);
          else if (deps.actions.revokeApiKey) changed = await deps.actions.revokeApiKey(finding.subject, cause);
          if (!changed) outcome = "failure";
        } catch {
          outcome = "error";
          done.delete(key); // try again at the next evaluation
        }
        if (changed) taken += 1;
        await deps.audit.recordNow({
          type: "audit.auto_response",
          outcome,
          actor: { kind: "system", display: "auto-response" },
          target: { kind: rule.action === "revoke_session" ? "session" : rule.action === "revoke_api_key" ? "api_key" : "user", id: finding.subject },
          reason:
            outcome === "success" ? `${rule.action} because of ${finding.kind}` : outcome === "failure" ? `${rule.action} changed nothing (unknown subject or already done)` : `${rule.action} failed`,
          metadata: { action: rule.action, finding_kind: finding.kind, finding_severity: finding.severity, finding_count: finding.count, sample_event_ids: finding.sampleEventIds.join(",") },
        });
      }
    }
    return taken;
  };
}
