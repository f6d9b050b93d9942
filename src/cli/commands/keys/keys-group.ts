import { dispatch, listCommands, type CommandTable, type Runnable } from "../../command-table.ts";

const KEY_COMMANDS: CommandTable = {
  create: { summary: "Create a key for yourself; prints its secret once.", load: async () => (await import("./create-key.ts")).createKeyCommand },
  list: { summary: "List your keys (or a user's, or everyone's, with the right role).", load: async () => (await import("./list-keys.ts")).listKeysCommand },
  get: { summary: "Show one key.", load: async () => (await import("./get-key.ts")).getKeyCommand },
  rotate: { summary: "Replace a key with a new one; the old one may keep working for a grace period.", load: async () => (await import("./rotate-key.ts")).rotateKeyCommand },
  revoke: { summary: "Revoke one key now, with a reason.", load: async () => (await import("./revoke-key.ts")).revokeKeyCommand },
  "revoke-all": { summary: "Revoke all your keys (owners: --everyone's), with a reason.", load: async () => (await import("./revoke-all-keys.ts")).revokeAllKeysCommand },
  health: { summary: "Check keys for risks (old, unused, never expiring, admin scopes, disabled owner).", load: async () => (await import("./key-health.ts")).keyHealthCommand },
};

const USAGE = `Usage: portcullis keys <command> [options]

Manages API keys through the gateway's ApiKeyService. "portcullis keys <command> --help" describes a
command. Tables by default; --json prints the API's own JSON for scripts.

Commands:
${listCommands(KEY_COMMANDS)}
`;

/** `keys`: the API key command group. */
export const keysCommand: Runnable = {
  run: (args) => dispatch(KEY_COMMANDS, args, USAGE, "keys command"),
};
