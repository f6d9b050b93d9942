/** Serving status in the vocabulary of grpc.health.v1. */
export type ServingStatus = "serving" | "not_serving" | "service_unknown";

/**
 * The gateway's health as load balancers and `grpc.health.v1.Health` see it. The overall status (the
 * empty service name) is serving only while the database answers and the server is not shutting down;
 * each registered service follows the overall status.
 */
export interface HealthStatus {
  get(service: string): ServingStatus;
  /** Yields the current status, then every change, until `signal` aborts. */
  watch(service: string, signal: AbortSignal): AsyncIterable<ServingStatus>;
  setDatabaseReachable(reachable: boolean): void;
  /** Marks everything not serving for good: called first thing on shutdown. */
  markShuttingDown(): void;
}

export function createHealthStatus(serviceNames: readonly string[]): HealthStatus {
  const known = new Set(["", ...serviceNames]);
  let databaseReachable = false;
  let shuttingDown = false;
  const listeners = new Set<() => void>();

  const overall = (): ServingStatus => (databaseReachable && !shuttingDown ? "serving" : "not_serving");
  const get = (service: string): ServingStatus => (known.has(service) ? overall() : "service_unknown");
  const changed = () => {
    for (const listener of listeners) listener();
  };

  return {
    get,
    async *watch(service, signal) {
      let last: ServingStatus | undefined;
      let wake: (() => void) | undefined;
      const listener = () => wake?.();
      const onAbort = () => wake?.();
      listeners.add(listener);
      signal.addEventListener("abort", onAbort);
      try {
        while (!signal.aborted) {
          const current = get(service);
          if (current !== last) {
            last = current;
            yield current;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        listeners.delete(listener);
        signal.removeEventListener("abort", onAbort);
      }
    },
    setDatabaseReachable(reachable) {
      if (reachable === databaseReachable) return;
      databaseReachable = reachable;
      changed();
    },
    markShuttingDown() {
      shuttingDown = true;
      changed();
    },
  };
}
