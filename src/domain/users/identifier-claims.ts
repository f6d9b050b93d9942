import unhomoglyph from "unhomoglyph";
import { DomainError } from "../errors.ts";
import type { UserRecord, UsersStore } from "./user-record.ts";

/**
 * The UTS #39 skeleton of a text: NFD, every character replaced by its prototype from Unicode's
 * confusables data (through `unhomoglyph`), NFD again. Two texts with one skeleton look alike ("оwner"
 * with a Cyrillic о, and "owner"). For comparison only, never for display.
 */
export function confusableSkeleton(text: string): string {
  return unhomoglyph(text.normalize("NFD")).normalize("NFD");
}

/**
 * What two usernames collide on when they look alike: the skeleton of the name as shown, lower-cased
 * and skeletoned again, so that neither case ("0wner" and "Owner") nor a homoglyph ("оwner") slips past.
 */
export function usernameLookalikeKey(display: string): string {
  return confusableSkeleton(confusableSkeleton(display).toLowerCase());
}

/** An identifier a user holds exclusively: the look of their username, or their e-mail address. */
export interface IdentifierClaim {
  readonly kind: "username" | "email";
  /** The compared form: the lookalike key of a username, the lower-cased address of an e-mail. */
  readonly value: string;
}

export const usernameClaim = (display: string): IdentifierClaim => ({ kind: "username", value: usernameLookalikeKey(display) });
export const emailClaim = (email: string): IdentifierClaim => ({ kind: "email", value: email.toLowerCase() });

/** What `user` currently holds of `kind`, in the compared form. */
function heldValue(user: UserRecord, kind: IdentifierClaim["kind"]): string | undefined {
  return kind === "username" ? usernameLookalikeKey(user.username) : user.email?.toLowerCase();
}

const claimId = (claim: IdentifierClaim) => `${claim.kind}:${claim.value}`;
const TAKEN: Readonly<Record<IdentifierClaim["kind"], string>> = {
  username: "username is taken, or looks like one that is",
  email: "email is taken",
};
/**
 * A claim younger than this is respected even when its holder does not (yet) show the identifier: a
 * create may still be hashing the password, an update not yet applied. An older one whose holder does
 * not show it was left by a run that died, and may be taken over.
 */
const CLAIM_SETTLE_MS = 5 * 60_000;
/** The claim that says the backfill ran (no identifier claim starts with "marker:"). */
const BACKFILL_MARKER_ID = "marker:identifier-claims-v1";

/** Claims on usernames and e-mail addresses, each held by one user at most. */
export interface IdentifierClaims {
  /** Claims all of `claims` for `userId`, or none: `already_exists` naming the first one taken. */
  claim(userId: string, claims: readonly IdentifierClaim[]): Promise<void>;
  /** Gives up `userId`'s claims (a failed create, an address replaced or removed). */
  release(userId: string, claims: readonly IdentifierClaim[]): Promise<void>;
  /**
   * Claims the identifiers of users created before claims existed, once per database; resolves with
   * how many users it went through (0 once done). Clashes among them are left as they are.
   */
  backfill(): Promise<number>;
}

/**
 * Uniqueness of usernames (by look) and e-mail addresses, atomic on every database: FerretDB 1.x makes
 * no conditional update atomic, so each identifier is claimed by inserting a document whose `_id` is the
 * identifier (the project's exactly-once rule) before the user takes it, and released when they let it
 * go. Of two concurrent creates or updates wanting one identifier, exactly one inserts the claim; the
 * other gets ALREADY_EXISTS.
 */
export function createIdentifierClaims(deps: { usersStore: UsersStore; now?: () => Date }): IdentifierClaims {
  const { usersStore } = deps;
  const now = deps.now ?? (() => new Date());

  /** Claims one identifier for `userId`; false when someone else holds it. */
  async function claimOne(userId: string, claim: IdentifierClaim): Promise<boolean> {
    const held = await usersStore.claimIdentifier(claimId(claim), userId, now());
    if (held === "claimed" || held.userId === userId) return true;
    if (now().getTime() - held.at.getTime() < CLAIM_SETTLE_MS) return false;
    const holder = await usersStore.findById(held.userId);
    if (holder && heldValue(holder, claim.kind) === claim.value) return false;
    // Abandoned: take it over, unless another run takes it over first.
    await usersStore.releaseIdentifier(claimId(claim), held.userId);
    return (await usersStore.claimIdentifier(claimId(claim), userId, now())) === "claimed";
  }

  const release = async (userId: string, claims: readonly IdentifierClaim[]): Promise<void> => {
    for (const claim of claims) await usersStore.releaseIdentifier(claimId(claim), userId);
  };

  return {
    /** Claims all of `claims` for `userId`, or none: `already_exists` naming the first one taken. */
    async claim(userId: string, claims: readonly IdentifierClaim[]): Promise<void> {
      const done: IdentifierClaim[] = [];
      for (const claim of claims) {
        if (!(await claimOne(userId, claim))) {
          await release(userId, done);
          throw new DomainError("already_exists", TAKEN[claim.kind]);
        }
        done.push(claim);
      }
    },

    /** Gives up `userId`'s claims (a failed create, an address replaced or removed). */
    release,

    /**
     * Claims the identifiers of users created before claims existed, once per database; resolves with
     * how many users it went through (0 once done). Clashes among them are left as they are.
     */
    async backfill(): Promise<number> {
      if (await usersStore.hasIdentifierClaim(BACKFILL_MARKER_ID)) return 0;
      let seen = 0;
      let afterId: string | undefined;
      for (;;) {
        const page = await usersStore.list({ pageSize: 500, ...(afterId !== undefined ? { afterId } : {}) });
        for (const user of page) {
          const claims = [usernameClaim(user.username), ...(user.email ? [emailClaim(user.email)] : [])];
          for (const claim of claims) await usersStore.claimIdentifier(claimId(claim), user._id, user.createdAt);
        }
        seen += page.length;
        if (page.length < 500) break;
        afterId = page.at(-1)!._id;
      }
      await usersStore.claimIdentifier(BACKFILL_MARKER_ID, "system", now());
      return seen;
    },
  };
}
