import type { EngineVoice } from "../../domain/audio/speech-engine.ts";

/** A voice as eSpeak NG's list_voices() reports it. */
export interface RawEspeakVoice {
  readonly name: string;
  readonly identifier: string;
  readonly languages: ReadonlyArray<{ readonly priority: number; readonly name: string }>;
}

/** eSpeak's own default voice ("en": English, Great Britain). */
export const ESPEAK_DEFAULT_VOICE = "gmw/en";

/**
 * Turns eSpeak's language names into BCP 47 tags in canonical case. Most already are ("en-gb" →
 * "en-GB"); the rest are repaired the way RFC 5646 prescribes: an extended language subtag replaces
 * its prefix ("zh-yue" → "yue"), and subtags that fit nowhere move into a private-use part
 * ("en-us-nyc" → "en-US-x-nyc"; "piqd", a reserved four-letter subtag, → "und-x-piqd").
 */
export function toBcp47(tag: string): string {
  const canonical = tryCanonical(tag);
  if (canonical) return canonical;
  const parts = tag
    .toLowerCase()
    .split("-")
    .filter((p) => p !== "" && p !== "x");
  if (parts.length >= 2 && /^[a-z]{2,3}$/.test(parts[0]!) && /^[a-z]{3}$/.test(parts[1]!)) {
    const extlang = tryCanonical([parts[1], ...parts.slice(2)].join("-"));
    if (extlang) return extlang;
  }
  for (let keep = parts.length - 1; keep >= 1; keep--) {
    const base = tryCanonical(parts.slice(0, keep).join("-"));
    const rest = parts.slice(keep).filter((p) => /^[a-z0-9]{1,8}$/.test(p));
    if (base) return tryCanonical(`${base}-x-${rest.join("-")}`) ?? base;
  }
  return tryCanonical(`und-x-${parts.filter((p) => /^[a-z0-9]{1,8}$/.test(p)).join("-")}`) ?? "und";
}

function tryCanonical(tag: string): string | undefined {
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    return undefined;
  }
}

/**
 * The engine's voices in the domain's terms. eSpeak's stock voices all report a male gender; every
 * voice synthesises at the engine's native rate and is delivered at any of `sampleRatesHz` through the
 * resampler.
 */
export function espeakVoices(raw: readonly RawEspeakVoice[], nativeRateHz: number, sampleRatesHz: readonly number[]): EngineVoice[] {
  return raw.map((voice) => {
    const languages = [...new Set(voice.languages.map((l) => toBcp47(l.name)))];
    return {
      id: voice.identifier,
      name: voice.name,
      language: languages[0] ?? "und",
      languages,
      gender: "male",
      style: "",
      sampleRatesHz,
      defaultSampleRateHz: nativeRateHz,
      isDefault: voice.identifier === ESPEAK_DEFAULT_VOICE,
    };
  });
}

/** eSpeak's words per minute for a speaking rate (1.0 = its normal 175 wpm), within its 80–450 range. */
export function wordsPerMinute(speakingRate: number): number {
  return Math.min(450, Math.max(80, Math.round(175 * speakingRate)));
}

/**
 * Text as eSpeak must receive it. The WebAssembly build synthesises with SSML and phoneme input turned
 * on, so plain text is made inert: the XML specials become entities (spoken as the characters they
 * stand for, never parsed as markup) and "[[", which would open phoneme mnemonics, is split.
 */
export function espeakSafeText(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\[(?=\[)/g, "[ ")
    .replace(/\](?=\])/g, "] ");
}
