import { setFlagsFromString } from "node:v8";

/**
 * Makes V8 weigh ArrayBuffer memory (audio chunks, protobuf and envelope buffers, socket reads) as part
 * of the heap's global limit: the rule later V8 releases make their default (chromium bug 361124432).
 * Node 24's V8 still uses the historic one by default:
 * every ArrayBuffer byte allocated since the last full collection counts toward the old generation,
 * even buffers that die young and a scavenge would free. A gateway streaming audio allocates about
 * eight buffer bytes per audio byte, so that rule forced a full mark-compact of the whole heap every
 * 2–3 MB of audio: measured, 30 ms of gateway CPU per MB of audio with it, 10 without.
 *
 * The flag is read whenever V8 computes its limits, so setting it at start-up, before any traffic,
 * takes effect (a test checks the mark-compacts it saves).
 */
export function countArrayBuffersInGlobalHeapLimit(): void {
  setFlagsFromString("--external-memory-accounted-in-global-limit");
}
