import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSecretBox } from "../../src/domain/crypto/secret-box.ts";
import { DomainError } from "../../src/domain/errors.ts";
import { deriveBackupCodeKey, normalizeBackupCode } from "../../src/domain/mfa/backup-codes.ts";
import { createMfaService, PENDING_ENROLLMENT_TTL_MS, type MfaService } from "../../src/domain/mfa/mfa.ts";
import { totpCodeAt, totpStepAt, totpUri } from "../../src/domain/mfa/totp.ts";
import { createMfaStore } from "../../src/store/mfa-store.ts";
import { openStore, type Store } from "../../src/store/mongo-store.ts";
import { useTestStore } from "../helpers/database.ts";

const database = useTestStore(import.meta.url);

const STEP_MS = 30_000;
const encryptionKey = randomBytes(32);
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const DISPLAY_CODE = /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/;

// A shared, settable clock, 15 s into a step so ±1 step never straddles a boundary by accident.
const START_MS = 56_666_667 * STEP_MS + 15_000;
let clock = START_MS;

/** A second connection to the same database: what another gateway instance would have. */
let secondConnection: Store;
beforeAll(async () => {
  secondConnection = await openStore({ uri: database.uri, dbName: database.dbName });
});
afterAll(async () => {
  await secondConnection?.close();
});

function service(store: Store = database.store): MfaService {
  return createMfaService({
    store: createMfaStore(store),
    secretBox: createSecretBox(encryptionKey),
    backupCodeKey: deriveBackupCodeKey(encryptionKey),
    now: () => clock,
  });
}

function newUserId(): string {
  return `user-${randomUUID()}`;
}

/** The raw stored factor document, as the database holds it. */
async function rawFactor(userId: string): Promise<Record<string, unknown> | null> {
  return database.store.db.collection<{ _id: string }>("mfa_factors").findOne({ _id: userId });
}

/** The raw recorded uses of the user's codes, in a stable order. */
async function rawUses(userId: string): Promise<Record<string, unknown>[]> {
  return database.store.db.collection<{ _id: string }>("mfa_code_uses").find({ userId }).sort({ _id: 1 }).toArray();
}

/** Everything stored about the user's MFA. */
async function rawState(userId: string) {
  return { factor: await rawFactor(userId), uses: await rawUses(userId) };
}

/** A user with MFA enabled at the current clock; the confirming code's step is used up. */
async function enrolledUser(mfa: MfaService = service()) {
  const userId = newUserId();
  const { secret } = await mfa.beginEnrollment(userId, `${userId}@example.com`);
  const { backupCodes } = await mfa.confirmEnrollment(userId, totpCodeAt(secret, clock));
  return { userId, secret, backupCodes };
}

async function domainErrorOf(promise: Promise<unknown>): Promise<DomainError> {
  const error: unknown = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(DomainError);
  return error as DomainError;
}

describe("MFA enrolment", () => {
  it("returns a secret, an otpauth URI and a PNG QR code, and enables MFA only once a valid code confirms it", async () => {
    clock = START_MS;
    const mfa = service();
    const userId = newUserId();

    const { secret, otpauthUri, qrPng } = await mfa.beginEnrollment(userId, "alice@example.com");
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 160 bits of base32
    expect(otpauthUri).toMatch(new RegExp(`^otpauth://totp/Portcullis:alice%40example\\.com\\?secret=${secret}&issuer=Portcullis(&|$)`));
    expect([...qrPng.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    expect(await mfa.isEnabled(userId)).toBe(false);
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock))).toBeUndefined();

    const wrong = String((Number(totpCodeAt(secret, clock)) + 1) % 1_000_000).padStart(6, "0");
    const refused = await domainErrorOf(mfa.confirmEnrollment(userId, wrong));
    expect(refused).toMatchObject({ code: "invalid_argument", message: "invalid code" });
    expect(await mfa.isEnabled(userId)).toBe(false);

    const { backupCodes } = await mfa.confirmEnrollment(userId, totpCodeAt(secret, clock));
    expect(await mfa.isEnabled(userId)).toBe(true);
    expect(backupCodes).toHaveLength(10);
    expect(new Set(backupCodes).size).toBe(10);
    for (const code of backupCodes) expect(code).toMatch(DISPLAY_CODE);
    expect(await mfa.remainingBackupCodes(userId)).toBe(10);
  });

  it("stores neither the TOTP secret nor any backup code, pending or enabled", async () => {
    clock = START_MS;
    const mfa = service();
    const userId = newUserId();
    const { secret } = await mfa.beginEnrollment(userId, "bob@example.com");
    const pendingJson = JSON.stringify(await rawFactor(userId));
    expect(pendingJson).toContain("pendingSecretSealed");
    expect(pendingJson.toUpperCase()).not.toContain(secret);

    const { backupCodes } = await mfa.confirmEnrollment(userId, totpCodeAt(secret, clock));
    expect(await mfa.verifyAndConsume(userId, backupCodes[0]!)).toBe("backup_code");
    const { factor, uses } = await rawState(userId);
    expect(factor).toMatchObject({ enabled: true });
    expect(factor).not.toHaveProperty("pendingSecretSealed");
    // The confirming step and the spent backup code are recorded, by step and by hash.
    expect(uses.map((use) => use["kind"]).sort()).toEqual(["backup_code", "totp"]);
    expect(uses.find((use) => use["kind"] === "totp")).toMatchObject({ step: totpStepAt(clock) });
    const json = JSON.stringify({ factor, uses }).toUpperCase();
    expect(json).not.toContain(secret);
    for (const code of backupCodes) {
      expect(json).not.toContain(code.toUpperCase());
      expect(json).not.toContain(code.replace("-", "").toUpperCase());
    }
  });

  it("refuses to begin when MFA is already enabled, and leaves the factor as it was", async () => {
    clock = START_MS;
    const mfa = service();
    const { userId } = await enrolledUser(mfa);
    const before = await rawState(userId);
    expect(await domainErrorOf(mfa.beginEnrollment(userId, "again@example.com"))).toMatchObject({ code: "failed_precondition" });
    expect(await rawState(userId)).toEqual(before);
  });

  it("restarting enrolment replaces the pending secret: the old one's code no longer confirms", async () => {
    clock = START_MS;
    const mfa = service();
    const userId = newUserId();
    const first = await mfa.beginEnrollment(userId, "carol@example.com");
    const second = await mfa.beginEnrollment(userId, "carol@example.com");
    expect(second.secret).not.toBe(first.secret);
    await expect(mfa.confirmEnrollment(userId, totpCodeAt(first.secret, clock))).rejects.toMatchObject({ code: "invalid_argument" });
    await mfa.confirmEnrollment(userId, totpCodeAt(second.secret, clock));
    expect(await mfa.isEnabled(userId)).toBe(true);
  });

  it("refuses to confirm without a pending enrolment, after 15 minutes, or twice", async () => {
    clock = START_MS;
    const mfa = service();
    const never = newUserId();
    expect(await domainErrorOf(mfa.confirmEnrollment(never, "123456"))).toMatchObject({ code: "failed_precondition" });

    const stale = newUserId();
    const { secret } = await mfa.beginEnrollment(stale, "dave@example.com");
    clock = START_MS + PENDING_ENROLLMENT_TTL_MS + STEP_MS;
    expect(await domainErrorOf(mfa.confirmEnrollment(stale, totpCodeAt(secret, clock)))).toMatchObject({ code: "failed_precondition" });
    expect(await mfa.isEnabled(stale)).toBe(false);

    clock = START_MS;
    const { userId, secret: enrolled } = await enrolledUser(mfa);
    clock += STEP_MS;
    expect(await domainErrorOf(mfa.confirmEnrollment(userId, totpCodeAt(enrolled, clock)))).toMatchObject({ code: "failed_precondition" });
  });

  it("of two confirmations racing with the same code, on two instances, exactly one enables MFA", async () => {
    clock = START_MS;
    const userId = newUserId();
    const { secret } = await service().beginEnrollment(userId, "frank@example.com");
    const code = totpCodeAt(secret, clock);
    const results = await Promise.allSettled([service().confirmEnrollment(userId, code), service(secondConnection).confirmEnrollment(userId, code)]);
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won).toHaveLength(1);
    expect(results.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "invalid_argument" } });
    // The codes handed out are the ones that work.
    const [first] = (won[0] as PromiseFulfilledResult<{ backupCodes: string[] }>).value.backupCodes;
    expect(await service().verifyAndConsume(userId, first!)).toBe("backup_code");
  });

  it("refuses an account name that is empty, huge or has control characters", async () => {
    const mfa = service();
    for (const name of ["", "x".repeat(257), "eve\n@example.com"]) {
      expect(await domainErrorOf(mfa.beginEnrollment(newUserId(), name))).toMatchObject({ code: "invalid_argument" });
    }
  });

  it("percent-encodes the account name so it cannot pose as another issuer", () => {
    expect(totpUri({ secret: "ABC", accountName: "Evil Corp:mallory" })).toMatch(/^otpauth:\/\/totp\/Portcullis:Evil%20Corp%3Amallory\?secret=ABC&issuer=Portcullis&/);
  });
});

describe("MFA verification", () => {
  it("the enrolment code cannot be used again to log in", async () => {
    clock = START_MS;
    const mfa = service();
    const { userId, secret } = await enrolledUser(mfa);
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock))).toBeUndefined();
  });

  it("accepts a TOTP code one step either side of now and refuses two steps away", async () => {
    clock = START_MS;
    const mfa = service();
    const { userId, secret } = await enrolledUser(mfa);
    clock = START_MS + 10 * STEP_MS;
    // Refusals first: an accepted step would make every older one a replay.
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock - 2 * STEP_MS))).toBeUndefined();
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock + 2 * STEP_MS))).toBeUndefined();
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock - STEP_MS))).toBe("totp");
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock + STEP_MS))).toBe("totp");
  });

  it("REPLAY: a code is accepted once, on this instance or any other", async () => {
    clock = START_MS;
    const first = service();
    const second = service(secondConnection);
    const { userId, secret } = await enrolledUser(first);

    clock += STEP_MS;
    const code = totpCodeAt(secret, clock);
    expect(await first.verifyAndConsume(userId, code)).toBe("totp");
    expect(await first.verifyAndConsume(userId, code)).toBeUndefined();
    expect(await second.verifyAndConsume(userId, code)).toBeUndefined();

    // Instances racing with the same fresh code: exactly one request wins.
    for (let round = 0; round < 3; round++) {
      clock += STEP_MS;
      const fresh = totpCodeAt(secret, clock);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? first : second).verifyAndConsume(userId, fresh)));
      expect(results.filter((r) => r === "totp")).toHaveLength(1);
      expect(results.filter((r) => r === undefined)).toHaveLength(9);
    }
  });

  it("refuses an older step once a newer one was accepted", async () => {
    clock = START_MS;
    const mfa = service();
    const { userId, secret } = await enrolledUser(mfa);
    clock += 5 * STEP_MS;
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock + STEP_MS))).toBe("totp");
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock))).toBeUndefined();
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock - STEP_MS))).toBeUndefined();
  });

  it("a backup code works once, whatever its case, dashes or spaces, here or on another instance", async () => {
    clock = START_MS;
    const mfa = service();
    const other = service(secondConnection);
    const { userId, backupCodes } = await enrolledUser(mfa);
    const [a, b, c] = backupCodes as [string, string, string];

    expect(await mfa.verifyAndConsume(userId, a)).toBe("backup_code");
    expect(await mfa.verifyAndConsume(userId, a)).toBeUndefined();
    expect(await other.verifyAndConsume(userId, a.toUpperCase())).toBeUndefined();

    expect(await mfa.verifyAndConsume(userId, ` ${b.toUpperCase().replace("-", " ")} `)).toBe("backup_code");
    expect(await other.verifyAndConsume(userId, b)).toBeUndefined();

    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? mfa : other).verifyAndConsume(userId, i % 3 ? c : c.replace("-", ""))));
    expect(results.filter((r) => r === "backup_code")).toHaveLength(1);
    expect(await mfa.remainingBackupCodes(userId)).toBe(7);
  });

  it("reads Crockford look-alikes as meant", () => {
    expect(normalizeBackupCode("o1ilo-ABCDE")).toBe("01110ABCDE");
    expect(normalizeBackupCode("uuuuu-uuuuu")).toBeUndefined();
    expect(normalizeBackupCode("abcde-abcd")).toBeUndefined();
  });

  it("answers undefined for malformed or wrong codes and changes nothing stored", async () => {
    clock = START_MS;
    const mfa = service();
    const { userId, secret, backupCodes } = await enrolledUser(mfa);
    clock += STEP_MS;
    const good = totpCodeAt(secret, clock);
    const wrongTotp = String((Number(good) + 1) % 1_000_000).padStart(6, "0");
    const wrongBackup = backupCodes[0]!.replace(/^./, (ch) => (ch === "0" ? "1" : "0"));
    const before = await rawState(userId);

    const malformed: unknown[] = [
      "",
      `${good}7`, // seven digits
      `${good.slice(0, 5)}a`, // a letter in a TOTP
      good.slice(0, 5),
      `${good}\n`,
      `\u0000${good}`,
      ` ${good}`,
      "１２３４５６", // full-width digits
      `${backupCodes[0]}\u0007`,
      "x".repeat(10 * 1024),
      `${backupCodes[0]}${" ".repeat(40)}`, // a real code, padded past the length bound
      "$gt",
      '{"$gt":""}',
      { $gt: "" },
      ["$gt"],
      null,
      123456,
      wrongTotp,
      wrongBackup,
    ];
    for (const code of malformed) {
      expect(await mfa.verifyAndConsume(userId, code as string), JSON.stringify(code)?.slice(0, 40)).toBeUndefined();
    }
    expect(await rawState(userId)).toEqual(before);
    // …and the good codes still work afterwards.
    expect(await mfa.verifyAndConsume(userId, good)).toBe("totp");
    expect(await mfa.verifyAndConsume(userId, backupCodes[0]!)).toBe("backup_code");
  });

  it("answers undefined for a user without MFA", async () => {
    const mfa = service();
    const userId = newUserId();
    expect(await mfa.verifyAndConsume(userId, "123456")).toBeUndefined();
    expect(await mfa.isEnabled(userId)).toBe(false);
    expect(await mfa.remainingBackupCodes(userId)).toBe(0);
    expect(await rawFactor(userId)).toBeNull();
  });
});

describe("MFA backup codes and disabling", () => {
  it("regenerating backup codes invalidates all earlier ones", async () => {
    clock = START_MS;
    const mfa = service();
    const { userId, backupCodes: old } = await enrolledUser(mfa);
    expect(await mfa.verifyAndConsume(userId, old[0]!)).toBe("backup_code");
    expect(await mfa.remainingBackupCodes(userId)).toBe(9);

    const { backupCodes: fresh } = await mfa.regenerateBackupCodes(userId);
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((code) => old.includes(code))).toEqual([]);
    expect(await mfa.remainingBackupCodes(userId)).toBe(10);
    for (const code of old) expect(await mfa.verifyAndConsume(userId, code)).toBeUndefined();
    expect(await mfa.verifyAndConsume(userId, fresh[3]!)).toBe("backup_code");
    expect(await mfa.remainingBackupCodes(userId)).toBe(9);
  });

  it("refuses to regenerate backup codes without MFA enabled", async () => {
    const mfa = service();
    expect(await domainErrorOf(mfa.regenerateBackupCodes(newUserId()))).toMatchObject({ code: "failed_precondition" });
  });

  it("disabling forgets the secret and the backup codes, and allows enrolling again", async () => {
    clock = START_MS;
    const mfa = service();
    const { userId, secret, backupCodes } = await enrolledUser(mfa);
    await mfa.disable(userId);

    expect(await mfa.isEnabled(userId)).toBe(false);
    expect(await mfa.remainingBackupCodes(userId)).toBe(0);
    clock += STEP_MS;
    expect(await mfa.verifyAndConsume(userId, totpCodeAt(secret, clock))).toBeUndefined();
    expect(await mfa.verifyAndConsume(userId, backupCodes[1]!)).toBeUndefined();
    const { factor, uses } = await rawState(userId);
    expect(factor).toMatchObject({ enabled: false, backupCodes: [] });
    expect(factor).not.toHaveProperty("secretSealed");
    expect(factor).not.toHaveProperty("enrollmentId");
    expect(uses).toEqual([]);

    await mfa.disable(userId); // idempotent
    await mfa.disable(newUserId()); // and fine for a user who never had MFA

    const again = await mfa.beginEnrollment(userId, "again@example.com");
    await mfa.confirmEnrollment(userId, totpCodeAt(again.secret, clock));
    expect(await mfa.isEnabled(userId)).toBe(true);
  });
});
