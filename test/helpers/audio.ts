import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { type Code, ConnectError } from "@connectrpc/connect";
import type { AudioChunk, StreamEnd, StreamHeader, SynthesizeResponse } from "../../gen/portcullis/v1/audio_stream_pb.js";

/** A whole Synthesize stream as a client receives it. */
export interface ReceivedStream {
  header: StreamHeader;
  chunks: AudioChunk[];
  end: StreamEnd;
  /** Every message's payload case, in order. */
  order: string[];
  /** The concatenated chunk data: the file. */
  audio: Buffer;
}

/** Reads a Synthesize stream to its end, checking nothing but that it has the three parts. */
export async function receive(stream: AsyncIterable<SynthesizeResponse>): Promise<ReceivedStream> {
  let header: StreamHeader | undefined;
  let end: StreamEnd | undefined;
  const chunks: AudioChunk[] = [];
  const order: string[] = [];
  for await (const message of stream) {
    order.push(message.payload.case ?? "none");
    if (message.payload.case === "header") header = message.payload.value;
    else if (message.payload.case === "chunk") chunks.push(message.payload.value);
    else if (message.payload.case === "end") end = message.payload.value;
  }
  if (!header || !end) throw new Error(`incomplete stream: ${order.length} messages, header ${header ? "present" : "missing"}, end ${end ? "present" : "missing"}`);
  return { header, chunks, end, order, audio: Buffer.concat(chunks.map((c) => c.data)) };
}

/** The status code a call fails with (or "ok"). */
export async function codeOf(run: () => Promise<unknown>): Promise<Code | "ok"> {
  try {
    await run();
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

const exec = promisify(execFile);

/** Runs a Python 3 snippet with `data` on stdin; returns its stdout parsed as JSON. */
export async function python(script: string, data: Buffer): Promise<Record<string, unknown>> {
  const child = exec("python3", ["-c", script], { maxBuffer: 64 * 1024 * 1024 });
  child.child.stdin!.end(data);
  const { stdout } = await child;
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** Python's standard `wave` module reads a WAV file: its parameters and frame count. */
export const PY_WAVE = `
import io, json, sys, wave
w = wave.open(io.BytesIO(sys.stdin.buffer.read()))
frames = w.readframes(1 << 31)
print(json.dumps({"channels": w.getnchannels(), "sampwidth": w.getsampwidth(), "rate": w.getframerate(), "frames": len(frames) // (w.getsampwidth() * w.getnchannels()), "comptype": w.getcomptype()}))
`;

/** Python's G.711 decoder (audioop.ulaw2lin): mu-law bytes to 16-bit samples, with their RMS. */
export const PY_ULAW = `
import audioop, json, sys
data = sys.stdin.buffer.read()
pcm = audioop.ulaw2lin(data, 2)
print(json.dumps({"samples": len(pcm) // 2, "rms": audioop.rms(pcm, 2)}))
`;

/** Root-mean-square level of 16-bit little-endian samples. */
export function rms(pcm: Int16Array | Float32Array): number {
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / Math.max(1, pcm.length));
}

/** Amplitude of one frequency in a signal (Goertzel), normalised so a full-scale sine gives ~0.5. */
export function toneLevel(samples: Float32Array, rate: number, frequency: number): number {
  const k = 2 * Math.cos((2 * Math.PI * frequency) / rate);
  let s1 = 0;
  let s2 = 0;
  for (const x of samples) {
    const s0 = x + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return Math.sqrt(power) / samples.length;
}

/** CPU time (user + system, in clock ticks) a process has used so far, from /proc. */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return check();
}
