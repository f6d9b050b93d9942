import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import type { CommandStartedEvent } from "mongodb";
import { inject } from "vitest";
import { createPortcullisTransport, type WireProtocol } from "../../clients/connect-node.ts";
import { createGateway, type Gateway } from "../../src/app/gateway.ts";
import { loadConfig, type Config } from "../../src/config/config.ts";
import type { AuditRecorder } from "../../src/domain/audit/audit-recorder.ts";
import { createPasswordHasher } from "../../src/domain/passwords/password-hasher.ts";
import { createUsersService } from "../../src/domain/users/users.ts";
import type { UserRecord } from "../../src/domain/users/user-record.ts";
import { startGatewayServer } from "../../src/app/gateway-server.ts";
import { loadOrCreateKeyring } from "../../src/keys/keyring.ts";
import { createLogger } from "../../src/log/logger.ts";
import type { PortcullisServer } from "../../src/transport/server.ts";
import { openStore, type Store } from "../../src/store/mongo-store.ts";
import { createUsersStore } from "../../src/store/users-store.ts";
import type { Role } from "../../src/domain/permissions.ts";
import { captureSecrets, noteSecret, saveLog } from "./secret-capture.ts";

/** The key every instance of one test database shares (pepper, encryption key), as a deployment's must. */
export function sharedTestKey(dbName: string, label: string): string {
  return createHash("sha256").update(`${dbName}:${label}`).digest("base64");
}

/** A strong password for test accounts (never a default: each test account gets its own suffix). */
export function testPassword(label: string): string {
  return `Tr0ub4dor&3-horse-${label}-staple`;
}

export interface IdentityServer {
  readonly server: PortcullisServer;
  readonly gateway: Gateway;
  readonly store: Store;
  readonly audit: AuditRecorder;
  readonly config: Config;
  readonly baseUrl: string;
  readonly port: number;
  logText(): string;
  /** Every database command this instance has sent, oldest first. */
  databaseCommands(): readonly CommandStartedEvent[];
  /** A typed client of `service` on this server, optionally with a bearer token. */
  client<S extends DescService>(service: S, options?: { token?: string; protocol?: WireProtocol }): Client<S>;
  /** Creates a user directly in the database (as the first owner would), returning the record. */
  createUser(username: string, role: Role, password?: string): Promise<UserRecord>;
  /** Audit events of a type, straight from the database. */
  auditEvents(type: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/**
 * Starts the real server with the real identity layer on a real database: one database per test file
 * (`dbName`), shared by every instance a test starts on it, as instances share MongoDB in production.
 */
export async function startIdentityServer(options: { dbName: string; keyFile?: string; env?: Record<string, string> }): Promise<IdentityServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "portcullis-identity-"));
  const config = loadConfig({
    // Instances on one database share these keys, as a deployment's instances must (the gateway refuses
    // to start otherwise); each test database gets its own.
    PORTCULLIS_API_KEY_PEPPER: sharedTestKey(options.dbName, "pepper"),
    PORTCULLIS_ENCRYPTION_KEY: sharedTestKey(options.dbName, "encryption"),
    PORTCULLIS_PORT: "0",
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_LOG_LEVEL: "info",
    ...(options.keyFile ? { PORTCULLIS_KEY_FILE: options.keyFile } : {}),
    ...options.env,
  });
  let text = "";
  const logger = createLogger({
    level: config.logLevel,
    destination: new Writable({
      write: (chunk: Buffer, _e, cb) => {
        text += chunk.toString();
        cb();
      },
    }),
  });
  const commands: CommandStartedEvent[] = [];
  const store = await openStore({ uri: inject("mongodbUri"), dbName: options.dbName, onCommand: (event) => commands.push(event) });
  const keyring = await loadOrCreateKeyring(config.keyFile, config.suppliedKeys);
  const gateway = await createGateway({ store, keyring, config, logger }).catch(async (error: unknown) => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  const { audit } = gateway;
  const { server, address, close: closeServer } = await startGatewayServer({ config, logger, capabilities: gateway.serverDeps });
  const { port } = address;
  const baseUrl = `http://127.0.0.1:${port}`;
  const users = createUsersService({ usersStore: createUsersStore(store), hasher: createPasswordHasher(config.passwordHash), audit });
  return {
    server,
    gateway,
    store,
    audit,
    config,
    baseUrl,
    port,
    logText: () => text,
    databaseCommands: () => commands,
    client: (service, clientOptions = {}) =>
      createClient(
        service,
        createPortcullisTransport({ baseUrl, protocol: clientOptions.protocol ?? "grpc", interceptors: [captureSecrets], ...(clientOptions.token ? { token: clientOptions.token } : {}) }),
      ),
    async createUser(username, role, password = testPassword(username)) {
      noteSecret(password);
      const usersStore = createUsersStore(store);
      if (!(await usersStore.anyOwnerExists())) {
        const first = await users.bootstrapOwner({ username: role === "owner" ? username : `root-${username}`.slice(0, 60), password });
        if (role === "owner") return first;
      }
      const owner = (await usersStore.list({ role: "owner", pageSize: 1 }))[0]!;
      return users.createUser({ kind: "user", id: owner._id, userId: owner._id, role: "owner", displayName: owner.username }, { username, password, role });
    },
    async auditEvents(type) {
      await audit.flush();
      return store.db.collection("audit_events").find({ type }).toArray() as Promise<Array<Record<string, unknown>>>;
    },
    async close() {
      await closeServer();
      await gateway.stop().catch(() => undefined);
      await saveLog(options.dbName, text);
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Logs a user in and enrols MFA; returns the access token and the backup codes (each usable once). */
export async function loginWithMfa(gw: IdentityServer, username: string): Promise<{ accessToken: string; sessionId: string; backupCodes: string[] }> {
  const { AuthService } = await import("../../gen/portcullis/v1/auth_pb.js");
  const { totpCodeAt } = await import("../../src/domain/mfa/totp.ts");
  const first = await gw.client(AuthService).login({ username, password: testPassword(username) });
  const auth = gw.client(AuthService, { token: first.accessToken });
  const { secret } = await auth.beginMfaEnrollment({});
  const totpCode = totpCodeAt(secret, Date.now());
  noteSecret([secret, totpCode]);
  const { backupCodes } = await auth.confirmMfaEnrollment({ totpCode });
  return { accessToken: first.accessToken, sessionId: first.sessionId, backupCodes };
}
