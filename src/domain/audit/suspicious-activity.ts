import { DomainError } from "../errors.ts";
import type { SealedAuditRecord } from "./audit-chain.ts";
import type { AuditLogStore } from "./audit-log-store.ts";

export type Severity = "low" | "medium" | "high" | "critical";
const SEVERITY_RANK: Readonly<Record<Severity, number>> = { low: 1, medium: 2, high: 3, critical: 4 };

export type FindingKind =
  | "failed_logins_per_user"
  | "failed_logins_per_ip"
  | "refresh_token_reuse"
  | "mfa_failures"
  | "permission_denied_burst"
  | "api_key_many_ips"
  | "login_from_new_ip"
  | "emergency_action";

export const FINDING_KINDS: readonly FindingKind[] = [
  "failed_logins_per_user",
  "failed_logins_per_ip",
  "refresh_token_reuse",
  "mfa_failures",
  "permission_denied_burst",
  "api_key_many_ips",
  "login_from_new_ip",
  "emergency_action",
];

/** One suspicious pattern: what, how bad, about whom, how often, when, and which events show it. */
export interface Finding {
  readonly kind: FindingKind;
  readonly severity: Severity;
  readonly subject: string;
  readonly count: number;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
  readonly sampleEventIds: readonly string[];
  readonly description: string;
}

/** How many matching events in the window make a finding (reaching twice the threshold makes it critical). */
export interface SuspiciousThresholds {
  readonly failedLoginsPerUser: number;
  readonly failedLoginsPerIp: number;
  readonly mfaFailures: number;
  readonly permissionDeniedBurst: number;
  readonly apiKeyDistinctIps: number;
}

export const MAX_WINDOW_MS = 30 * 86_400_000;
const MAX_EVENTS = 200_000;
const SAMPLES = 10;

/**
 * Analyses the audit events of a window. Each detector groups matching events by subject and reports
 * groups at or above its threshold; high at the threshold, critical at twice it. Refresh-token reuse is
 * always critical and an emergency action always high. A login from an IP the user never used before
 * (and who had logged in before, from elsewhere) is low.
 */
export function createSuspiciousActivity(deps: { store: AuditLogStore; thresholds: SuspiciousThresholds; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  return async (window: { start?: Date | undefined; end?: Date | undefined; minSeverity?: Severity | undefined }) => {
    const end = window.end ?? now();
    const start = window.start ?? new Date(end.getTime() - 86_400_000);
    if (start.getTime() >= end.getTime()) throw new DomainError("invalid_argument", "start_time must be before end_time");
    if (end.getTime() - start.getTime() > MAX_WINDOW_MS) throw new DomainError("invalid_argument", "the window may span at most 30 days");
    const events = await deps.store.scan({ startTime: start, endTime: end }, MAX_EVENTS);
    const t = deps.thresholds;
    const findings: Finding[] = [];
    const group = (
      kind: FindingKind,
      threshold: number,
      matches: (e: SealedAuditRecord) => boolean,
      subjectOf: (e: SealedAuditRecord) => string | undefined,
      describe: (subject: string, count: number) => string,
      fixed?: Severity,
    ) => {
      const groups = new Map<string, SealedAuditRecord[]>();
      for (const event of events) {
        if (!matches(event)) continue;
        const subject = subjectOf(event);
        if (!subject) continue;
        const list = groups.get(subject) ?? [];
        list.push(event);
        groups.set(subject, list);
      }
      for (const [subject, list] of groups) {
        if (list.length < threshold) continue;
        findings.push(finding(kind, fixed ?? (list.length >= 2 * threshold ? "critical" : "high"), subject, list, describe(subject, list.length)));
      }
    };
    const failedLogin = (e: SealedAuditRecord) => e.type === "auth.login" && (e.outcome === "failure" || e.outcome === "denied");
    group(
      "failed_logins_per_user",
      t.failedLoginsPerUser,
      failedLogin,
      (e) => e.actor?.id ?? (e.metadata?.["username_key"] === undefined ? undefined : String(e.metadata["username_key"])),
      (s, n) => `${n} failed logins for account ${s}`,
    );
    group(
      "failed_logins_per_ip",
      t.failedLoginsPerIp,
      failedLogin,
      (e) => e.ip,
      (s, n) => `${n} failed logins from ${s}`,
    );
    group(
      "refresh_token_reuse",
      1,
      (e) => e.type === "auth.refresh_reuse",
      (e) => e.target?.id,
      (s) => `a rotated refresh token of session ${s} was presented again`,
      "critical",
    );
    group(
      "mfa_failures",
      t.mfaFailures,
      (e) => e.type === "auth.mfa" && e.outcome === "failure",
      (e) => e.actor?.id,
      (s, n) => `${n} wrong MFA codes for user ${s}`,
    );
    group(
      "permission_denied_burst",
      t.permissionDeniedBurst,
      (e) => e.outcome === "denied" && e.type !== "auth.login",
      (e) => e.actor?.id,
      (s, n) => `${n} denied calls by ${s}`,
    );
    group(
      "emergency_action",
      1,
      (e) => e.type.includes("emergency"),
      (e) => e.actor?.id ?? "system",
      (s, n) => `${n} emergency action(s) by ${s}`,
      "high",
    );

    // One API key from many addresses: distinct IPs, not calls.
    const keyIps = new Map<string, { ips: Set<string>; events: SealedAuditRecord[] }>();
    for (const e of events) {
      // Uses, not refusals: the key must have been presented with its secret from those addresses.
      if (e.actor?.kind !== "api_key" || !e.actor.id || !e.ip || e.outcome !== "success") continue;
      const entry = keyIps.get(e.actor.id) ?? { ips: new Set<string>(), events: [] };
      entry.ips.add(e.ip);
      entry.events.push(e);
      keyIps.set(e.actor.id, entry);
    }
    for (const [keyId, { ips, events: used }] of keyIps) {
      if (ips.size < t.apiKeyDistinctIps) continue;
      findings.push(finding("api_key_many_ips", ips.size >= 2 * t.apiKeyDistinctIps ? "critical" : "high", keyId, used, `API key ${keyId} used from ${ips.size} addresses`, ips.size));
    }

    // Logins from an address the user never logged in from, judged against all earlier successful logins.
    const logins = events.filter((e) => e.type === "auth.login" && e.outcome === "success" && e.actor?.id && e.ip);
    const byUser = new Map<string, SealedAuditRecord[]>();
    for (const e of logins) byUser.set(e.actor!.id!, [...(byUser.get(e.actor!.id!) ?? []), e]);
    for (const [userId, list] of byUser) {
      const history = await deps.store.scan({ types: ["auth.login"], outcome: "success", actorId: userId, endTime: start }, 10_000);
      const known = new Set(history.map((e) => e.ip));
      const fresh: SealedAuditRecord[] = [];
      let loggedInBefore = history.length > 0;
      for (const e of list) {
        if (loggedInBefore && !known.has(e.ip)) fresh.push(e);
        known.add(e.ip);
        loggedInBefore = true;
      }
      if (fresh.length > 0) findings.push(finding("login_from_new_ip", "low", userId, fresh, `user ${userId} logged in from ${[...new Set(fresh.map((e) => e.ip))].join(", ")}, never used before`));
    }

    const min = window.minSeverity ? SEVERITY_RANK[window.minSeverity] : 0;
    const result = findings.filter((f) => SEVERITY_RANK[f.severity] >= min).sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.lastSeen.getTime() - a.lastSeen.getTime());
    return { findings: result, start, end, eventsAnalyzed: events.length };
  };
}

export function severityAtLeast(severity: Severity, min: Severity): boolean {
  return SEVERITY_RANK[severity] >= SEVERITY_RANK[min];
}

function finding(kind: FindingKind, severity: Severity, subject: string, events: readonly SealedAuditRecord[], description: string, count = events.length): Finding {
  const times = events.map((e) => e.time.getTime());
  return {
    kind,
    severity,
    subject,
    count,
    firstSeen: new Date(Math.min(...times)),
    lastSeen: new Date(Math.max(...times)),
    sampleEventIds: events.slice(-SAMPLES).map((e) => e._id),
    description,
  };
}
