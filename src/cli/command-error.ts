// Kept apart from command-support.ts so that commands talking to a remote gateway do not load the
// database driver just to report an error.

/** Bad usage or input the operator can fix; the message is one line and never holds a secret. */
export class CommandError extends Error {
  /** 2 for usage errors (bad flags or arguments), 1 for everything else. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A usage error: exit code 2, and a pointer to the command's help. */
export function usageError(message: string): CommandError {
  return new CommandError(`${message}; see --help`, 2);
}

/**
 * One stderr line, never a stack. Domain, config and connection errors carry messages written to be
 * shown (naming the variable or host, never a password or credential), so they are printed as they are.
 */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, " ").trim().slice(0, 500) || "failed";
}
