import { ZxcvbnFactory } from "@zxcvbn-ts/core";
import * as common from "@zxcvbn-ts/language-common";
import * as english from "@zxcvbn-ts/language-en";

/** Fewest code points a password may have (NIST SP 800-63B asks for at least 8; we want passphrases). */
export const MIN_PASSWORD_LENGTH = 12;
/** Most code points: enough for any passphrase, small enough that hashing and checking stay cheap. */
export const MAX_PASSWORD_LENGTH = 1024;
/** zxcvbn score required: 3 is "safely unguessable: moderate protection from offline slow-hash scenario". */
const MIN_SCORE = 3;
// zxcvbn's matching grows with length; beyond this many characters only the prefix is judged, which is
// already a strong password if it passes (and a refused prefix is a fair refusal).
const CHECKED_LENGTH = 128;

export type PasswordStrength = { ok: true } | { ok: false; reason: string };

let estimator: ZxcvbnFactory | undefined;

// Built on first use: loading the dictionaries takes ~200 ms, which processes that never check a
// password (the server answering only API keys) should not pay. Levenshtein matching stays off: it makes
// a check cost ~400 ms of event-loop time, and the exact and l33t dictionary matches already catch
// common passwords.
function getEstimator(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({
    translations: english.translations,
    graphs: common.adjacencyGraphs,
    dictionary: { ...common.dictionary, ...english.dictionary },
    maxLength: CHECKED_LENGTH,
  });
  return estimator;
}

/**
 * Whether `password` may be set: 12 to 1024 code points and a zxcvbn score of at least 3 against its
 * common-password and English dictionaries, keyboard patterns, and `userInputs` (the username and email,
 * so that a password built from them is refused).
 *
 * A refusal's `reason` is one sentence for the person choosing the password, using zxcvbn's warning and
 * suggestion when it has them. It never contains the password.
 */
export function checkPasswordStrength(password: string, userInputs: readonly string[]): PasswordStrength {
  const length = codePointLength(password);
  if (length < MIN_PASSWORD_LENGTH) return { ok: false, reason: `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.` };
  if (length > MAX_PASSWORD_LENGTH) return { ok: false, reason: `The password must be at most ${MAX_PASSWORD_LENGTH} characters long.` };

  const result = getEstimator().check(password, expandUserInputs(userInputs));
  if (result.score >= MIN_SCORE) return { ok: true };

  const warning = result.feedback.warning?.trim();
  const suggestion = result.feedback.suggestions[0]?.trim();
  const parts = ["The password is too easy to guess.", warning, suggestion].filter((part): part is string => Boolean(part));
  const reason = parts.join(" ");
  // The feedback is fixed text, but a password could in principle coincide with it: never echo one.
  return { ok: false, reason: reason.includes(password) ? "The password is too easy to guess." : reason };
}

function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/** The inputs and their parts: "alice.smith@example.com" also yields "alice.smith", "alicesmith", "alice", "smith", "example". */
function expandUserInputs(inputs: readonly string[]): string[] {
  const words = new Set<string>();
  for (const input of inputs) {
    const lower = input.trim().toLowerCase().slice(0, 256);
    if (lower === "") continue;
    words.add(lower);
    const [local] = lower.split("@");
    if (local) words.add(local);
    // "zephyr.quill" is also typed as "zephyrquill".
    const joined = (local ?? "").replace(/[^\p{L}\p{N}]+/gu, "");
    if (joined.length >= 3) words.add(joined);
    for (const part of lower.split(/[^\p{L}\p{N}]+/u)) if (part.length >= 3) words.add(part);
  }
  return [...words];
}
