import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AudioPiece, SessionSpec } from "../../src/domain/audio/speech-engine.ts";
import { createEspeakEngine, type EspeakEngine } from "../../src/tts/espeak-engine.ts";
import { eventually } from "../helpers/audio.ts";

const spec: SessionSpec = { voiceId: "gmw/en-US", speakingRate: 1, encoding: "mp3", sampleRateHz: 48000 };
// One sentence of 200 characters: about 13 seconds of speech, spoken by the engine in one job.
const SENTENCE = `${`${"the engine keeps speaking this long sentence ".repeat(5)}`.slice(0, 199).trim()}.`;

async function collect(pieces: AsyncIterable<AudioPiece>, onPiece?: (index: number) => void) {
  let samples = 0;
  let bytes = 0;
  let index = 0;
  for await (const piece of pieces) {
    samples += piece.samples;
    bytes += piece.data.length;
    onPiece?.(index++);
  }
  return { samples, bytes };
}

/** The engine pool on its own: real eSpeak processes, no gateway. */
describe("the eSpeak engine pool", () => {
  let engine: EspeakEngine;
  beforeAll(async () => {
    engine = createEspeakEngine({ processes: 1, onLog: () => undefined });
    await engine.warmUp();
  });
  afterAll(async () => {
    await engine.stop();
  });

  it("stops mid-sentence when the signal aborts: the engine does not finish the sentence", async () => {
    const session = await engine.open(spec);
    const whole = await collect(session.speak(SENTENCE, new AbortController().signal));
    const stop = new AbortController();
    const cut = await collect(session.speak(SENTENCE, stop.signal), (i) => i === 0 && stop.abort());
    session.close();
    expect(whole.samples).toBeGreaterThan(48000 * 8);
    expect(cut.samples).toBeLessThan(whole.samples / 2);
    expect(await eventually(() => engine.processes()[0]?.pendingJobs === 0)).toBe(true);
  });

  it("runs streams side by side, each with its own encoder state", async () => {
    const a = await engine.open({ ...spec, encoding: "ogg_opus", sampleRateHz: 24000 });
    const b = await engine.open({ ...spec, encoding: "wav", sampleRateHz: 16000 });
    const [ra, rb] = await Promise.all([collect(a.speak("First stream.", new AbortController().signal)), collect(b.speak("Second stream.", new AbortController().signal))]);
    expect(ra.bytes).toBeGreaterThan(0);
    expect(rb.bytes).toBe(44 + rb.samples * 2); // WAV header once, then 16-bit samples
    a.close();
    b.close();
  });

  it("reports UNAVAILABLE and a down health, never a hang, when the engine cannot start", async () => {
    const broken = createEspeakEngine({ processes: 1, onLog: () => undefined, entry: new URL("../helpers/no-such-engine.ts", import.meta.url) });
    await expect(broken.voices()).rejects.toMatchObject({ code: "unavailable" });
    expect(broken.health()).toMatchObject({ state: "down" });
    // While it cools down it answers at once instead of forking again.
    await expect(broken.open(spec)).rejects.toMatchObject({ code: "unavailable" });
    await broken.stop();
  });
});
