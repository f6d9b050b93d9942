import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { loadGatewayConfig } from "../../app/gateway-settings.ts";
import { createChainSealer } from "../../domain/audit/audit-chain.ts";
import { deriveAuditKeys } from "../../domain/audit/audit-keys.ts";
import { loadOrCreateKeyring } from "../../keys/keyring.ts";
import { createAuditRecorder } from "../../domain/audit/audit-recorder.ts";
import { createPasswordHasher } from "../../domain/passwords/password-hasher.ts";
import { checkPasswordStrength } from "../../domain/passwords/password-policy.ts";
import { normalizeEmail, normalizeUsername } from "../../domain/users/identifiers.ts";
import { createUsersService } from "../../domain/users/users.ts";
import { createAuditStore } from "../../store/audit-store.ts";
import { createUsersStore } from "../../store/users-store.ts";
import { CommandError, oneLine, withGatewayStore } from "../command-support.ts";

const USAGE = `Usage: npm run -s cli -- bootstrap-owner --username NAME [--email ADDRESS] [--generate]

Creates the first owner account. Refused once any owner exists.

The password is read from stdin (all of it; one trailing newline is dropped), e.g.
  read -rs PASSWORD && printf %s "$PASSWORD" | npm run -s cli -- bootstrap-owner --username alice
or, with --generate, made up and printed once on stdout.

Works with or without a running gateway: uses MONGODB_URI (and PORTCULLIS_DB_NAME) when set, else the
embedded database under PORTCULLIS_DATA_DIR (default ./data), started for the duration if need be.

Options:
  --username NAME     The owner's username (3-64 letters, digits, . _ - @).
  --email ADDRESS     Optional email address.
  --generate          Generate a strong random password instead of reading stdin.
  -h, --help          Show this help.
`;

// A password is at most 1024 code points; anything much longer on stdin is a mistake (a file piped in).
const MAX_STDIN_BYTES = 16 * 1024;

/** `bootstrap-owner`: creates the first owner from the command line; see {@link USAGE}. */
export const bootstrapOwnerCommand = {
  async run(args: string[]): Promise<number> {
    try {
      return await bootstrapOwner(args);
    } catch (err) {
      const exitCode = err instanceof CommandError ? err.exitCode : 1;
      process.stderr.write(`portcullis bootstrap-owner: ${oneLine(err)}\n`);
      return exitCode;
    }
  },
};

async function bootstrapOwner(args: string[]): Promise<number> {
  // 1. Arguments.
  let values: { username?: string | undefined; email?: string | undefined; generate?: boolean | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args,
      options: { username: { type: "string" }, email: { type: "string" }, generate: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new CommandError(`${oneLine(err)}; see --help`, 2);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.username === undefined) throw new CommandError("--username is required; see --help", 2);

  // 2. Check what can be checked before touching the database (starting an embedded one takes a while).
  const username = normalizeUsername(values.username).display;
  const email = normalizeEmail(values.email);
  const password = values.generate ? randomBytes(18).toString("base64url") : await readPasswordFromStdin();
  const strength = await checkPasswordStrength(password, [username, ...(email ? [email] : [])]);
  if (!strength.ok) throw new CommandError(strength.reason);

  // 3. The database: the configured one, else the embedded one (shared with a running gateway).
  const config = loadGatewayConfig();
  return withGatewayStore(config, async (store) => {
    const keyring = await loadOrCreateKeyring(config.keyFile, config.suppliedKeys);
    const audit = createAuditRecorder({ store: createAuditStore(store, createChainSealer(deriveAuditKeys(keyring.encryptionKey).seal)) });
    const users = createUsersService({ usersStore: createUsersStore(store), hasher: createPasswordHasher(config.passwordHash), audit });
    const owner = await users.bootstrapOwner({ username, password, ...(email ? { email } : {}) });
    await audit.flush();

    process.stdout.write(`Created owner ${JSON.stringify(owner.username)} (id ${owner._id}).\n`);
    if (values.generate) process.stdout.write(`Generated password (shown only this once; store it now): ${password}\n`);
    return 0;
  });
}

async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    // Typed at a terminal it would echo on screen and in scrollback.
    throw new CommandError("pipe the password on stdin (see --help) or use --generate", 2);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN_BYTES) throw new CommandError("stdin is too long for a password");
    chunks.push(chunk);
  }
  const password = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (password === "") throw new CommandError("no password on stdin (pipe one in, or use --generate)");
  return password;
}
