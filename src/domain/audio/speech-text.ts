import { DomainError } from "../errors.ts";

/** The longest text one Synthesize call speaks, in characters (Unicode code points). */
export const MAX_TEXT_CHARACTERS = 5000;
/**
 * The longest piece the engine speaks in one go. Longer sentences are cut at a clause or word boundary:
 * a piece is the unit of cancellation latency, of time to first audio and of what a stream may buffer
 * beyond its limit, so it stays short.
 */
export const MAX_PIECE_CHARACTERS = 200;

// C0 and C1 controls except tab, line feed and carriage return (which become spaces), and DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for.
const CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;
const WHITESPACE_CONTROLS = /[\t\n\r]/g;
const SSML = /^\s*(<\?xml\b|<speak\b)/i;

/**
 * Checks and cleans a text to speak. It must be plain text: SSML is refused (INVALID_ARGUMENT) rather
 * than passed to the engine, and any other markup-looking characters are spoken as characters (the
 * engine adapter escapes them). Control characters are removed; the result is never empty.
 */
export function cleanSpeechText(text: string, field = "text"): string {
  let characters = 0;
  for (const _ of text) if (++characters > MAX_TEXT_CHARACTERS) break;
  if (characters > MAX_TEXT_CHARACTERS) throw new DomainError("invalid_argument", `${field} is longer than ${MAX_TEXT_CHARACTERS} characters`);
  if (SSML.test(text)) throw new DomainError("invalid_argument", `${field} looks like SSML, which is not supported: send plain text`);
  const cleaned = removeControlCharacters(text).trim();
  if (cleaned === "") throw new DomainError("invalid_argument", `${field} is empty`);
  return cleaned;
}

/** Text fit for the engine whatever its source: lone surrogates mended, tab and line breaks as spaces, other controls removed. */
export function removeControlCharacters(text: string): string {
  return text.toWellFormed().replace(WHITESPACE_CONTROLS, " ").replace(CONTROLS, "");
}

/**
 * Cuts a text into sentences (Unicode sentence boundaries, UAX #29, for the voice's language), each cut
 * further into pieces of at most MAX_PIECE_CHARACTERS at the last clause mark or space before the limit.
 */
export function splitSentences(text: string, language: string): string[] {
  const segmenter = new Intl.Segmenter(safeLocale(language), { granularity: "sentence" });
  const out: string[] = [];
  for (const { segment } of segmenter.segment(text)) {
    for (const piece of cutLong(segment.trim())) if (piece !== "") out.push(piece);
  }
  return out;
}

function cutLong(sentence: string): string[] {
  const pieces: string[] = [];
  let rest = sentence;
  while ([...rest].length > MAX_PIECE_CHARACTERS) {
    const head = [...rest].slice(0, MAX_PIECE_CHARACTERS).join("");
    const clause = Math.max(head.lastIndexOf(", "), head.lastIndexOf("; "), head.lastIndexOf(": "), head.lastIndexOf(" - "));
    const space = head.lastIndexOf(" ");
    const cut = clause > MAX_PIECE_CHARACTERS / 2 ? clause + 1 : space > MAX_PIECE_CHARACTERS / 2 ? space : head.length;
    pieces.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut).trim();
  }
  pieces.push(rest);
  return pieces;
}

function safeLocale(language: string): string {
  try {
    return Intl.getCanonicalLocales(language)[0] ?? "und";
  } catch {
    return "und";
  }
}

/**
 * Collects a text that arrives in fragments (an AI answer's deltas) and hands out each sentence as soon
 * as it is complete — a sentence is complete once text after it has begun — so speech can start while
 * the rest is still being written. `end()` returns what is left.
 */
export function createSentenceCollector(language: string) {
  const segmenter = new Intl.Segmenter(safeLocale(language), { granularity: "sentence" });
  let pending = "";
  return {
    /** Adds a fragment; returns the sentences it completed, ready to speak. */
    add(fragment: string): string[] {
      pending += fragment;
      const segments = [...segmenter.segment(pending)];
      if (segments.length < 2) return [];
      // Every segment but the last is complete; the last may still grow.
      const last = segments.at(-1)!;
      const complete = pending.slice(0, last.index);
      pending = pending.slice(last.index);
      return splitSentences(complete, language);
    },
    end(): string[] {
      const rest = splitSentences(pending, language);
      pending = "";
      return rest;
    },
  };
}
