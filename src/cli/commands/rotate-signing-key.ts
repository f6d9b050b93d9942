import { parseArgs } from "node:util";
import { loadGatewayConfig } from "../../app/gateway-settings.ts";
import { createChainSealer } from "../../domain/audit/audit-chain.ts";
import { deriveAuditKeys } from "../../domain/audit/audit-keys.ts";
import { createAuditRecorder } from "../../domain/audit/audit-recorder.ts";
import { openSigningKeySet } from "../../app/identity.ts";
import { loadOrCreateKeyring } from "../../keys/keyring.ts";
import { createAuditStore } from "../../store/audit-store.ts";
import { CommandError, oneLine, withGatewayStore } from "../command-support.ts";

const USAGE = `Usage: npm run -s cli -- rotate-signing-key

Rotates the JWT signing key of PORTCULLIS_KEY_FILE now (it also rotates by itself every
PORTCULLIS_SIGNING_KEY_ROTATION_DAYS): a new Ed25519 key signs new tokens, and the old public key keeps
verifying until the last token it signed expires. A running gateway using the same key file switches to
the new key within a second; other instances learn the new public key from the database.
`;

/** `rotate-signing-key`: rotates the signing key on command; see {@link USAGE}. */
export const rotateSigningKeyCommand = {
  async run(args: string[]): Promise<number> {
    try {
      let values: { help?: boolean | undefined };
      try {
        ({ values } = parseArgs({ args, options: { help: { type: "boolean", short: "h" } }, strict: true }));
      } catch (err) {
        throw new CommandError(`${oneLine(err)}; see --help`, 2);
      }
      if (values.help) {
        process.stdout.write(USAGE);
        return 0;
      }
      const config = loadGatewayConfig();
      const keyring = await loadOrCreateKeyring(config.keyFile, config.suppliedKeys);
      return await withGatewayStore(config, async (store) => {
        const keys = await openSigningKeySet({ store, keyring, config });
        const previous = keys.current().kid;
        const { kid } = await keys.rotate();
        const audit = createAuditRecorder({ store: createAuditStore(store, createChainSealer(deriveAuditKeys(keyring.encryptionKey).seal)) });
        await audit.recordNow({ type: "system.signing_key_rotate", outcome: "success", actor: { kind: "system", display: "cli" }, metadata: { new_kid: kid, old_kid: previous } });
        process.stdout.write(`Rotated the signing key: ${previous} -> ${kid}\n`);
        return 0;
      });
    } catch (err) {
      process.stderr.write(`portcullis rotate-signing-key: ${oneLine(err)}\n`);
      return err instanceof CommandError ? err.exitCode : 1;
    }
  },
};
