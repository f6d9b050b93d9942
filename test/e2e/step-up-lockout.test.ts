import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { WireProtocol } from "../../clients/connect-node.ts";
import { AuthService } from "../../gen/portcullis/v1/auth_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/portcullis/v1/errors_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { loginWithMfa, startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";

type Outcome = "ok" | "denied" | "locked" | string;
const outcomeOf = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    () => "ok",
    (e: unknown) => {
      const error = ConnectError.from(e);
      const reason = error.findDetails(ErrorInfoSchema)[0]?.reason;
      if (error.code === Code.ResourceExhausted && reason === ErrorReason.LOCKED) return "locked";
      if (error.code === Code.PermissionDenied) return "denied";
      return `${Code[error.code]}:${error.rawMessage}`;
    },
  );
const PROTOCOLS: readonly WireProtocol[] = ["grpc", "connect"];
// Not a TOTP code (six digits) and no backup code: certainly wrong, never by luck right.
const WRONG_CODE = "not-the-code";

/**
 * Issue 11, item 2: a fresh MFA code or the current password, proved again inside a session, is
 * guessed like a password at login — so wrong ones count toward the same per-user lock, are audited,
 * and while the lock is on no MFA-gated action (nor ChangePassword, nor Login) is even tried.
 */
describe("step-up secrets share the login lock", () => {
  let gw: IdentityServer;
  const failuresOf = (username: string) => gw.store.db.collection("login_throttle").countDocuments({ key: `user:${username}` });
  /** Past failures of the user, as if from earlier guesses: enough for a lock of half a minute. */
  const lockFor = (username: string) =>
    gw.store.db.collection("login_throttle").insertMany(Array.from({ length: 10 }, () => ({ _id: randomUUID() as never, key: `user:${username}`, at: new Date() })));

  /** Repeats `attempt` until it is locked (at most 12 times): the outcomes, in order. */
  async function guessUntilLocked(attempt: () => Promise<Outcome>): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    while (outcomes.length < 12 && outcomes.at(-1) !== "locked") outcomes.push(await attempt());
    return outcomes;
  }

  beforeAll(async () => {
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url) });
  });
  // Every test guesses from 127.0.0.1: forget the address's failures so that one test's guesses do not
  // lock the address for the next (the per-user lock is what these tests are about).
  afterEach(async () => {
    await gw.store.db.collection("login_throttle").deleteMany({ key: { $regex: "^ip:" } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it.each(PROTOCOLS)("counts wrong fresh MFA codes toward the lock and audits them (%s)", async (protocol) => {
    const username = `mfa-guess-${protocol}`;
    await gw.createUser(username, "user");
    const { accessToken } = await loginWithMfa(gw, username);
    const auth = gw.client(AuthService, { token: accessToken, protocol });
    const outcomes = await guessUntilLocked(() => outcomeOf(auth.disableMfa({ mfaCode: WRONG_CODE })));
    // The first five wrong codes are checked (and refused); then the lock holds.
    expect(outcomes.slice(0, 5)).toEqual(["denied", "denied", "denied", "denied", "denied"]);
    expect(outcomes.at(-1)).toBe("locked");
    expect(await failuresOf(username)).toBeGreaterThanOrEqual(5);
    const events = await gw.auditEvents("mfa.verify");
    const mine = events.filter((e) => (e["actor"] as { id: string }).id === (e["target"] as { id: string }).id && e["ip"] !== undefined);
    expect(mine.filter((e) => e["outcome"] === "failure").length).toBeGreaterThanOrEqual(5);
    expect(events).toContainEqual(expect.objectContaining({ outcome: "denied", reason: expect.stringContaining("locked") }));
  });

  it.each(PROTOCOLS)("refuses every MFA-gated action and the login while the user is locked, even with the right secret (%s)", async (protocol) => {
    const username = `locked-${protocol}`;
    await gw.createUser(username, "user");
    const { accessToken, backupCodes } = await loginWithMfa(gw, username);
    const auth = gw.client(AuthService, { token: accessToken, protocol });
    await lockFor(username);
    expect(await outcomeOf(auth.disableMfa({ mfaCode: backupCodes[0]! }))).toBe("locked");
    expect(await outcomeOf(auth.regenerateBackupCodes({ mfaCode: backupCodes[1]! }))).toBe("locked");
    expect(await outcomeOf(auth.changePassword({ currentPassword: testPassword(username), newPassword: "a-brand-new-Passphrase-77" }))).toBe("locked");
    expect(await outcomeOf(gw.client(AuthService, { protocol }).login({ username, password: testPassword(username), mfaCode: backupCodes[2]! }))).toBe("locked");
    // Nothing was done: MFA is still on.
    expect((await auth.whoAmI({})).mfaEnabled).toBe(true);
  });

  it.each(PROTOCOLS)("counts wrong current passwords on ChangePassword toward the same lock (%s)", async (protocol) => {
    const username = `pw-guess-${protocol}`;
    await gw.createUser(username, "user");
    const { accessToken } = await gw.client(AuthService).login({ username, password: testPassword(username) });
    const auth = gw.client(AuthService, { token: accessToken, protocol });
    const outcomes = await guessUntilLocked(() => outcomeOf(auth.changePassword({ currentPassword: "certainly-not-my-password", newPassword: "a-brand-new-Passphrase-77" })));
    expect(outcomes.slice(0, 5)).toEqual(["denied", "denied", "denied", "denied", "denied"]);
    expect(outcomes.at(-1)).toBe("locked");
    expect(await failuresOf(username)).toBeGreaterThanOrEqual(5);
    const events = await gw.auditEvents("user.password_change");
    expect(events.filter((e) => e["outcome"] === "failure" && e["requestId"] !== undefined).length).toBeGreaterThanOrEqual(5);
  });
});
