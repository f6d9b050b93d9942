// The part of @echogarden/espeak-ng-emscripten (eSpeak NG's Emscripten build, which ships no types)
// that the engine worker uses.
declare module "@echogarden/espeak-ng-emscripten" {
  export interface EspeakNgWorker {
    /** The engine's native sample rate (22050 Hz). */
    readonly samplerate: number;
    /** Words per minute (80–450; 175 is normal). */
    rate: number;
    list_voices(): Array<{ name: string; identifier: string; languages: Array<{ priority: number; name: string }> }>;
    /** 0 on success. */
    set_voice(identifier: string): number;
    /** Synthesises synchronously; the callback gets 16-bit samples and returns true to stop the engine. */
    synthesize(text: string, callback: (samples: Int16Array, events: unknown[]) => boolean): void;
  }
  const load: () => Promise<{ eSpeakNGWorker: new () => EspeakNgWorker }>;
  export default load;
}
