import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import type { Role } from "../../src/domain/permissions.ts";
import { testPassword, type IdentityServer } from "./identity-server.ts";

/** Creates a user of `role` and logs in; returns the access token and ids. */
export async function userWithToken(gw: IdentityServer, username: string, role: Role): Promise<{ token: string; userId: string; sessionId: string; refreshToken: string }> {
  const user = await gw.createUser(username, role);
  const login = await gw.client(AuthService).login({ username, password: testPassword(username) });
  return { token: login.accessToken, userId: user._id, sessionId: login.sessionId, refreshToken: login.refreshToken };
}

/** Expects `promise` to fail with `code`; returns the error for further checks. */
export async function expectCode(promise: Promise<unknown>, code: Code): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    const connectError = ConnectError.from(error);
    expect(Code[connectError.code]).toBe(Code[code]);
    return connectError;
  }
  throw new Error(`expected ${Code[code]}, but the call succeeded`);
}

/** Everything a stream yields, as an array. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** A key file path in a fresh directory: instances sharing a database must share keys (as in production). */
export async function sharedKeyFile(): Promise<string> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  return join(await mkdtemp(join(tmpdir(), "portcullis-keys-")), "keys.json");
}
