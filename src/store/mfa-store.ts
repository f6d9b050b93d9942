import { MongoServerError, type Collection, type Filter, type UpdateFilter } from "mongodb";
import type { MfaCodeUse, MfaStore } from "../domain/mfa/mfa-factor.ts";
import type { Store } from "./mongo-store.ts";

const DUPLICATE_KEY = 11000;

/** A factor in `mfa_factors`, keyed by user id. Uses of its codes are kept apart, in `mfa_code_uses`. */
interface MfaFactorDocument {
  _id: string;
  enabled: boolean;
  enrollmentId?: string;
  secretSealed?: string;
  pendingSecretSealed?: string;
  pendingCreatedAt?: Date;
  backupCodes: Array<{ hash: string }>;
  enabledAt?: Date;
  updatedAt: Date;
}

/** One spent TOTP step or backup code, in `mfa_code_uses`; never updated. */
interface MfaCodeUseDocument {
  _id: string;
  userId: string;
  enrollmentId: string;
  kind: MfaCodeUse["kind"];
  step?: number;
  usedAt: Date;
}

/**
 * Stores TOTP factors in `mfa_factors` and the uses of their codes in `mfa_code_uses`.
 *
 * Why two collections: FerretDB 1.x applies an `updateOne` as read-then-write, so a conditional update
 * (`lastUsedStep: { $lt: step }`, `usedAt: { $exists: false }`) lets several racing requests through —
 * measured: up to 17 of 20 — and a concurrent write to another field of the same document can be lost.
 * An insert whose `_id` exists always fails, on every backend, so each use is an insert of a document
 * named after what is spent, and logins never write to the factor itself.
 */
export function createMfaStore(store: Store): MfaStore {
  const factors: Collection<MfaFactorDocument> = store.db.collection<MfaFactorDocument>("mfa_factors");
  const uses: Collection<MfaCodeUseDocument> = store.db.collection<MfaCodeUseDocument>("mfa_code_uses");

  async function updated(filter: Filter<MfaFactorDocument>, update: UpdateFilter<MfaFactorDocument>): Promise<boolean> {
    return (await factors.updateOne(filter, update)).matchedCount === 1;
  }

  return {
    async find(userId) {
      const doc = await factors.findOne({ _id: userId });
      if (!doc) return undefined;
      const { _id, enrollmentId, backupCodes, ...rest } = doc;
      if (enrollmentId === undefined) return { userId, ...rest, backupCodes };

      const [newestStep, usedBackupCodes] = await Promise.all([
        uses.find({ enrollmentId, kind: "totp" }).sort({ step: -1 }).limit(1).next(),
        backupCodes.length === 0 ? [] : uses.find({ _id: { $in: backupCodes.map((c) => useId(enrollmentId, { kind: "backup_code", hash: c.hash })) } }).toArray(),
      ]);
      const usedAt = new Map(usedBackupCodes.map((use) => [use._id, use.usedAt]));
      return {
        userId,
        ...rest,
        enrollmentId,
        ...(newestStep?.step !== undefined ? { lastUsedStep: newestStep.step } : {}),
        backupCodes: backupCodes.map(({ hash }) => {
          const at = usedAt.get(useId(enrollmentId, { kind: "backup_code", hash }));
          return at ? { hash, usedAt: at } : { hash };
        }),
      };
    },

    async savePending(userId, pending) {
      const filter: Filter<MfaFactorDocument> = { _id: userId, enabled: false };
      const set = { enrollmentId: pending.enrollmentId, pendingSecretSealed: pending.secretSealed, pendingCreatedAt: pending.at, updatedAt: pending.at };
      if (await updated(filter, { $set: set })) return true;
      // No upsert: FerretDB 1.24 drops `$setOnInsert` fields holding an empty array.
      try {
        await factors.insertOne({ _id: userId, enabled: false, backupCodes: [], ...set });
        return true;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // The _id exists but did not match: MFA is enabled — or a concurrent first enrolment inserted the
        // document a moment ago, in which case the update now matches.
        return updated(filter, { $set: set });
      }
    },

    enable(userId, factor) {
      return updated(
        { _id: userId, enabled: false, enrollmentId: factor.enrollmentId, pendingSecretSealed: factor.secretSealed },
        {
          $set: {
            enabled: true,
            secretSealed: factor.secretSealed,
            backupCodes: factor.backupCodeHashes.map((hash) => ({ hash })),
            enabledAt: factor.at,
            updatedAt: factor.at,
          },
          $unset: { pendingSecretSealed: "", pendingCreatedAt: "" },
        },
      );
    },

    replaceBackupCodes(userId, enrollmentId, backupCodeHashes, at) {
      return updated({ _id: userId, enabled: true, enrollmentId }, { $set: { backupCodes: backupCodeHashes.map((hash) => ({ hash })), updatedAt: at } });
    },

    async disable(userId, at) {
      await factors.updateOne(
        { _id: userId },
        {
          $set: { enabled: false, backupCodes: [], updatedAt: at },
          $unset: { enrollmentId: "", secretSealed: "", pendingSecretSealed: "", pendingCreatedAt: "", enabledAt: "" },
        },
      );
      // After the factor: once its enrolment id is gone nothing can record uses under it any more.
      await uses.deleteMany({ userId });
    },

    async recordUse(userId, enrollmentId, use, at) {
      try {
        await uses.insertOne({
          _id: useId(enrollmentId, use),
          userId,
          enrollmentId,
          kind: use.kind,
          ...(use.kind === "totp" ? { step: use.step } : {}),
          usedAt: at,
        });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    },

    async forgetTotpStepsBefore(enrollmentId, step) {
      await uses.deleteMany({ enrollmentId, kind: "totp", step: { $lt: step } });
    },
  };
}

/** The `_id` naming one use: the same use always gets the same id, which is what makes it single. */
function useId(enrollmentId: string, use: MfaCodeUse): string {
  return use.kind === "totp" ? `${enrollmentId}:totp:${use.step}` : `${enrollmentId}:backup_code:${use.hash}`;
}

function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}
