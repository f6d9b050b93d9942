import { dispatch, listCommands, type CommandTable, type Runnable } from "../../command-table.ts";

const AUDIT_COMMANDS: CommandTable = {
  query: { summary: "Search the audit log with filters (audit.read).", load: async () => (await import("./query-events.ts")).queryEventsCommand },
  tail: { summary: "Follow the audit log live, or resume after a sequence number.", load: async () => (await import("./tail-events.ts")).tailEventsCommand },
  export: { summary: "Export events as JSON Lines or CSV, with a signed closing manifest.", load: async () => (await import("./export-events.ts")).exportEventsCommand },
  verify: { summary: "Check an export FILE offline against the gateway's published keys.", load: async () => ({ run: (await import("./verify-export.ts")).auditVerify }) },
  suspicious: { summary: "Findings over a time window: failed logins, token reuse, key misuse…", load: async () => (await import("./suspicious-activity.ts")).suspiciousActivityCommand },
};

const USAGE = `Usage: portcullis audit <command> [options]

Reads the gateway's tamper-evident audit log through AuditService. "portcullis audit <command> --help"
describes a command. Tables by default; --json prints the API's own JSON for scripts.

Commands:
${listCommands(AUDIT_COMMANDS)}
`;

/** `audit`: the audit log command group. */
export const auditCommand: Runnable = {
  run: (args) => dispatch(AUDIT_COMMANDS, args, USAGE, "audit command"),
};
