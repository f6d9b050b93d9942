// The password-strength thread: zxcvbn and its dictionaries live here, not on the event loop's heap.
// They take 13 MB once loaded; on the main heap every full garbage collection would mark them again,
// and streaming (audio, AI answers) triggers many. A check is rare (account creation, password change).
import { ZxcvbnFactory } from "@zxcvbn-ts/core";
import * as common from "@zxcvbn-ts/language-common";
import * as english from "@zxcvbn-ts/language-en";
import { parentPort } from "node:worker_threads";

export interface StrengthTask {
  readonly id: number;
  readonly password: string;
  readonly userInputs: readonly string[];
}

export type StrengthResult = { readonly id: number; readonly score: number; readonly warning?: string; readonly suggestion?: string } | { readonly id: number; readonly error: string };

/** Only this many leading characters are judged: zxcvbn's matching grows with length (see password-policy.ts). */
export const CHECKED_LENGTH = 128;

// Levenshtein matching stays off: it makes a check cost ~400 ms, and the exact and l33t dictionary
// matches already catch common passwords.
const estimator = new ZxcvbnFactory({
  translations: english.translations,
  graphs: common.adjacencyGraphs,
  dictionary: { ...common.dictionary, ...english.dictionary },
  maxLength: CHECKED_LENGTH,
});

parentPort?.on("message", (task: StrengthTask) => {
  let result: StrengthResult;
  try {
    const { score, feedback } = estimator.check(task.password, [...task.userInputs]);
    result = {
      id: task.id,
      score,
      ...(feedback.warning ? { warning: feedback.warning } : {}),
      ...(feedback.suggestions[0] ? { suggestion: feedback.suggestions[0] } : {}),
    };
  } catch (error) {
    result = { id: task.id, error: error instanceof Error ? error.name : "unknown" };
  }
  parentPort?.postMessage(result);
});
