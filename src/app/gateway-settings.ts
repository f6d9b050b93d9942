import { ConfigError, loadConfig, type Config } from "../config/config.ts";
import { VARIABLES } from "../config/config-variables.ts";
import { API_KEY_PREFIX_PATTERN } from "../domain/api-keys/key-format.ts";
import { ACTIONS_FOR_KIND, RESPONSE_ACTIONS, type ResponseRule } from "../domain/audit/auto-response.ts";
import { FINDING_KINDS } from "../domain/audit/suspicious-activity.ts";

/** Settings whose vocabulary the domain owns, checked against it. */
export interface GatewaySettings {
  /** The automatic response rules, typed (empty: automatic response is off). */
  readonly responseRules: readonly ResponseRule[];
}

/**
 * Checks the configured values that only the domain can judge — the API-key prefix against the key
 * format, the automatic response rules against the finding kinds and actions that exist — and throws
 * ConfigError naming the variable, as the configuration's own parsing does. The configuration knows
 * their syntax only, so it depends on nothing; main.ts and the CLI check them as they load it
 * (loadGatewayConfig), and the gateway again when it is built.
 */
export function gatewaySettingsOf(config: Config): GatewaySettings {
  if (!API_KEY_PREFIX_PATTERN.test(config.apiKeys.prefix)) {
    throw new ConfigError(VARIABLES.apiKeyPrefix.name, "must be 1 to 12 lower-case letters or digits, starting with a letter");
  }
  const name = VARIABLES.auditAutoResponse.name;
  const responseRules = config.audit.autoResponse.rules.map((entry): ResponseRule => {
    const [kind, action, extra] = entry.split(":");
    const knownKind = FINDING_KINDS.find((k) => k === kind);
    const knownAction = RESPONSE_ACTIONS.find((a) => a === action);
    if (extra !== undefined || !knownKind || !knownAction) {
      throw new ConfigError(name, `each rule must be finding_kind:action with a kind of ${FINDING_KINDS.join(", ")} and an action of ${RESPONSE_ACTIONS.join(", ")}`);
    }
    if (!ACTIONS_FOR_KIND[knownKind].includes(knownAction)) throw new ConfigError(name, `${knownAction} cannot answer ${knownKind}`);
    return { kind: knownKind, action: knownAction };
  });
  return { responseRules };
}

/** loadConfig, then gatewaySettingsOf: what main.ts and the CLI load, so a bad value stops them before any work. */
export function loadGatewayConfig(env?: Readonly<Record<string, string | undefined>>, cwd?: string): Config {
  const config = loadConfig(env, cwd);
  gatewaySettingsOf(config);
  return config;
}
