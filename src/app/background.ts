import type { Logger } from "../log/logger.ts";

/** Work a gateway repeats on a fixed period while it runs; a failed run is logged and retried next period. */
export interface PeriodicTask {
  /** What the work is, as the warning says when it fails ("<name> failed"). */
  readonly name: string;
  readonly everyMs: number;
  run(): Promise<unknown>;
}

/** Something with a schedule of its own (the revocation and key caches, the usage tracker, the audit tail). */
export interface Poller {
  start?(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** Every background activity of one gateway process, started and stopped in one place. */
export interface Background {
  /** Starts the pollers (in order, each awaited) and then the periodic tasks. */
  start(): Promise<void>;
  /** Stops the periodic tasks, then the pollers in reverse order; a poller's failure to stop is logged. */
  stop(): Promise<void>;
}

/**
 * The one place the gateway's timers live. Timers are unref'd: background work never keeps a process
 * alive on its own; main.ts stops it on SIGTERM, tests and the CLI when they are done.
 */
export function createBackground(deps: { tasks: readonly PeriodicTask[]; pollers: readonly Poller[]; logger: Logger }): Background {
  let timers: NodeJS.Timeout[] = [];
  return {
    async start() {
      for (const poller of deps.pollers) await poller.start?.();
      timers = deps.tasks.map((task) => {
        const timer = setInterval(() => {
          task.run().catch((error: unknown) => deps.logger.warn({ err: error }, `${task.name} failed`));
        }, task.everyMs);
        timer.unref();
        return timer;
      });
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      timers = [];
      for (const poller of [...deps.pollers].reverse()) {
        try {
          await poller.stop();
        } catch (error) {
          deps.logger.error({ err: error }, "stopping background work failed");
        }
      }
    },
  };
}
