import type { ConnectRouter } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { DomainError } from "../domain/errors.ts";
import type { HealthStatus, ServingStatus } from "../health/health-status.ts";

const STATUS: Readonly<Record<ServingStatus, Status>> = {
  serving: Status.SERVING,
  not_serving: Status.NOT_SERVING,
  service_unknown: Status.SERVICE_UNKNOWN,
};

/** Registers the standard grpc.health.v1.Health service (Check and Watch). */
export function registerHealth(router: ConnectRouter, health: HealthStatus): void {
  router.service(Health, {
    check(request) {
      const status = health.get(request.service);
      // The protocol answers NOT_FOUND for services it does not know.
      if (status === "service_unknown") throw new DomainError("not_found", "unknown service");
      return { status: STATUS[status] };
    },
    async *watch(request, context) {
      for await (const status of health.watch(request.service, context.signal)) {
        yield { status: STATUS[status] };
      }
    },
  });
}
