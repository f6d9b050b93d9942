// The synthesis thread of an engine process: eSpeak NG (GPL-3.0, WebAssembly build), the resampler and
// the encoders. It runs one job at a time, synchronously; the process's main thread schedules jobs and
// raises the abort flag, which the engine's audio callback checks every few milliseconds of audio.
import { parentPort, workerData } from "node:worker_threads";
import loadEspeak from "@echogarden/espeak-ng-emscripten";
import type { SessionSpec } from "../../domain/audio/speech-engine.ts";
import { createMp3EncoderPool } from "../audio/mp3-encoder.ts";
import { createOggOpusEncoder } from "../audio/opus-encoder.ts";
import { createMulawEncoder, createPcmEncoder } from "../audio/pcm-encoders.ts";
import { createResampler } from "../audio/resampler.ts";
import { concatBytes, type StreamEncoder } from "../audio/stream-encoder.ts";
import { STANDARD_SAMPLE_RATES, type EngineJob, type FromEngine } from "../engine-protocol.ts";
import { espeakSafeText, espeakVoices, wordsPerMinute } from "./espeak-voices.ts";

const port = parentPort!;
const abortFlag = new Int32Array(workerData.abortFlag as SharedArrayBuffer);
const espeak = new (await loadEspeak()).eSpeakNGWorker();
const nativeRate = espeak.samplerate;
const resampler = await createResampler(nativeRate);
const mp3 = createMp3EncoderPool();
const sessions = new Map<number, StreamEncoder>();
let currentVoice = "";
// Batch small engine callbacks into pieces of this size, except the first piece of a job, which goes out
// at once: it is the stream's time to first audio.
const PIECE_BYTES = 32 * 1024;

const send = (message: FromEngine) => {
  // Hand audio bytes over without a copy when they own their whole buffer.
  const data = message.type === "audio" ? message.data : undefined;
  const transfer = data && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? [data.buffer as ArrayBuffer] : [];
  port.postMessage(message, transfer);
};

async function encoderFor(session: number, spec: SessionSpec): Promise<StreamEncoder> {
  const existing = sessions.get(session);
  if (existing) return existing;
  let encoder: StreamEncoder;
  switch (spec.encoding) {
    case "pcm_s16le":
    case "wav":
      encoder = createPcmEncoder({ sampleRateHz: spec.sampleRateHz, wavHeader: spec.encoding === "wav" });
      break;
    case "mulaw":
      encoder = createMulawEncoder();
      break;
    case "mp3":
      await mp3.prepare();
      encoder = mp3.open(spec.sampleRateHz);
      break;
    case "ogg_opus":
      encoder = createOggOpusEncoder({ sampleRateHz: spec.sampleRateHz, serial: (Math.random() * 0x7fffffff) | 0 });
      break;
  }
  sessions.set(session, encoder);
  return encoder;
}

/** Speaks one sentence, sending audio as it is produced; false if the job was aborted. */
function speak(job: number, encoder: StreamEncoder, spec: SessionSpec, text: string): boolean {
  if (spec.voiceId !== currentVoice) {
    if (espeak.set_voice(spec.voiceId) !== 0) throw new Error(`the engine has no voice ${spec.voiceId}`);
    currentVoice = spec.voiceId;
  }
  espeak.rate = wordsPerMinute(spec.speakingRate);
  resampler.begin(spec.sampleRateHz);
  let parts: Uint8Array[] = [];
  let bytes = 0;
  let samples = 0;
  let sent = false;
  const flush = () => {
    if (bytes === 0 && samples === 0) return;
    const data = concatBytes(parts);
    send({ type: "audio", job, data, samples });
    parts = [];
    bytes = 0;
    samples = 0;
    sent = true;
  };
  const add = (pcm: Int16Array) => {
    const data = encoder.encode(pcm);
    samples += pcm.length;
    if (data.length > 0) {
      parts.push(data);
      bytes += data.length;
    }
    if (!sent ? bytes > 0 : bytes >= PIECE_BYTES) flush();
  };
  let aborted = false;
  espeak.synthesize(espeakSafeText(text), (chunk) => {
    if (Atomics.load(abortFlag, 0) === job) {
      aborted = true;
      return true; // stops the engine
    }
    if (chunk.length > 0) add(resampler.process(chunk));
    return false;
  });
  if (aborted) return false;
  add(resampler.end());
  flush();
  return true;
}

async function run(job: EngineJob): Promise<void> {
  try {
    if (job.type === "close") {
      sessions.get(job.session)?.release();
      sessions.delete(job.session);
      send({ type: "done", job: job.job, outcome: "complete" });
      return;
    }
    const encoder = await encoderFor(job.session, job.spec);
    if (job.type === "finish") {
      sessions.delete(job.session);
      const data = encoder.finish();
      if (data.length > 0) send({ type: "audio", job: job.job, data, samples: 0 });
      send({ type: "done", job: job.job, outcome: "complete" });
      return;
    }
    const complete = speak(job.job, encoder, job.spec, job.text);
    send({ type: "done", job: job.job, outcome: complete ? "complete" : "aborted" });
  } catch (error) {
    send({ type: "done", job: job.job, outcome: "failed", detail: error instanceof Error ? error.message : String(error) });
  }
}

port.on("message", (job: EngineJob) => void run(job));
send({
  type: "ready",
  name: "eSpeak NG (WebAssembly build, @echogarden/espeak-ng-emscripten)",
  voices: espeakVoices(espeak.list_voices(), nativeRate, STANDARD_SAMPLE_RATES),
  nativeRateHz: nativeRate,
});
