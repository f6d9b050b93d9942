import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { AiService } from "../../gen/portcullis/v1/ai_pb.js";
import { ApiKeyService } from "../../gen/portcullis/v1/api_key_pb.js";
import { AudioStreamService } from "../../gen/portcullis/v1/audio_stream_pb.js";
import { AuditService } from "../../gen/portcullis/v1/audit_pb.js";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { HealthStatus } from "../health/health-status.ts";
import type { DescriptorIndex } from "../reflection/descriptor-index.ts";
import { registerHealth } from "./health-service.ts";
import { registerReflection } from "./reflection-service.ts";

/** The Portcullis API services. Methods without an implementation answer UNIMPLEMENTED. */
export const API_SERVICES = [AuthService, ApiKeyService, AiService, AudioStreamService, AuditService] as const;

/** Every service name the server answers, as reflection's ListServices reports it. */
export function servedServiceNames(options: { reflection: boolean }): string[] {
  const names: string[] = [...API_SERVICES.map((s) => s.typeName), Health.typeName];
  if (options.reflection) names.push(ServerReflectionV1.typeName, ServerReflectionV1alpha.typeName);
  return names.sort();
}

/** The API implementations, service by service; methods left out answer UNIMPLEMENTED. */
export interface ServiceHandlers {
  readonly auth?: Partial<ServiceImpl<typeof AuthService>>;
  readonly apiKey?: Partial<ServiceImpl<typeof ApiKeyService>>;
  readonly ai?: Partial<ServiceImpl<typeof AiService>>;
  readonly audioStream?: Partial<ServiceImpl<typeof AudioStreamService>>;
  readonly audit?: Partial<ServiceImpl<typeof AuditService>>;
}

export interface RouteDeps {
  readonly health: HealthStatus;
  /** Undefined disables reflection. */
  readonly descriptorIndex: DescriptorIndex | undefined;
  readonly services: ServiceHandlers;
}

/** Registers every service in one place. */
export function registerRoutes(router: ConnectRouter, deps: RouteDeps): void {
  const { services } = deps;
  router.service(AuthService, services.auth ?? {});
  router.service(ApiKeyService, services.apiKey ?? {});
  router.service(AiService, services.ai ?? {});
  // Audio does not compress: gzip would spend the gateway's CPU on every chunk for almost nothing.
  router.service(AudioStreamService, services.audioStream ?? {}, { compressMinBytes: Number.MAX_SAFE_INTEGER });
  router.service(AuditService, services.audit ?? {});
  registerHealth(router, deps.health);
  if (deps.descriptorIndex) {
    const names = servedServiceNames({ reflection: true });
    registerReflection(router, deps.descriptorIndex, () => names);
  }
}
