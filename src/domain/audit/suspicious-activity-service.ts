import type { RequestContext } from "../request-context.ts";
import { auditedCaller } from "./audit-caller.ts";
import type { AuditRecorder } from "./audit-recorder.ts";
import type { Finding, Severity } from "./suspicious-activity.ts";

/** A window analysed for suspicious activity, with what was found in it. */
export interface SuspiciousActivityReport {
  readonly findings: Finding[];
  readonly start: Date;
  readonly end: Date;
  readonly eventsAnalyzed: number;
}

/** The analysis over a window (createSuspiciousActivity). */
export type AnalyseWindow = (window: { start?: Date | undefined; end?: Date | undefined; minSeverity?: Severity | undefined }) => Promise<SuspiciousActivityReport>;

/** GetSuspiciousActivity as a service: analysis, the audited read, and the automatic response. */
export interface SuspiciousActivityService {
  /** Analyses a window for a caller; the read is audited, and findings go through the response policy. */
  analyse(reader: RequestContext, window: { start?: Date | undefined; end?: Date | undefined; minSeverity?: Severity | undefined }): Promise<SuspiciousActivityReport>;
  /** The periodic evaluation: the last 24 hours' findings through the policy; resolves with the actions taken. */
  respond(): Promise<number>;
}

const RESPONSE_WINDOW_MS = 86_400_000;

/**
 * Analysis plus automatic response. With no response rules configured, nothing is acted on and the
 * periodic evaluation does no work.
 */
export function createSuspiciousActivityService(deps: {
  analyse: AnalyseWindow;
  /** Applies the response policy to findings; resolves with the number of actions taken. */
  responder: (findings: readonly Finding[]) => Promise<number>;
  /** Whether any response rule is configured. */
  responds: boolean;
  audit: AuditRecorder;
  now?: () => number;
}): SuspiciousActivityService {
  const now = deps.now ?? Date.now;
  return {
    async analyse(reader, window) {
      const result = await deps.analyse(window);
      deps.audit.record({
        type: "audit.suspicious_query",
        outcome: "success",
        ...auditedCaller(reader),
        metadata: { start_time: result.start.toISOString(), end_time: result.end.toISOString(), findings: result.findings.length },
      });
      if (deps.responds) await deps.responder(result.findings);
      return result;
    },
    async respond() {
      if (!deps.responds) return 0;
      return deps.responder((await deps.analyse({ start: new Date(now() - RESPONSE_WINDOW_MS) })).findings);
    },
  };
}
