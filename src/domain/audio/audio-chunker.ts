import { ENCODINGS } from "./audio-formats.ts";
import type { AudioEncoding, AudioPiece } from "./speech-engine.ts";

/** One chunk as the contract numbers it. */
export interface AudioChunk {
  readonly data: Uint8Array;
  readonly sequence: number;
  readonly offsetBytes: number;
  /** Playback position of the chunk's first byte (exact for PCM, WAV and mu-law; estimated otherwise). */
  readonly startMs: number;
}

/**
 * Cuts encoded audio into chunks of exactly `chunkBytes` (the last may be smaller), numbered from 0,
 * with their byte offsets and start times. Times come from the samples each engine piece was encoded
 * from: exact arithmetic for uncompressed encodings, interpolation over each piece for compressed ones.
 */
export function createAudioChunker(options: { encoding: AudioEncoding; sampleRateHz: number; chunkBytes: number }) {
  const facts = ENCODINGS[options.encoding];
  const rate = options.sampleRateHz;
  const buffered: Uint8Array[] = [];
  let bufferedBytes = 0;
  let sequence = 0;
  let emittedBytes = 0; // bytes already cut into chunks
  let receivedBytes = 0;
  let receivedSamples = 0;
  // For compressed encodings: (byte offset, sample offset) at the end of each piece not yet passed.
  const marks: Array<{ bytes: number; samples: number; startBytes: number; startSamples: number }> = [];

  const msAt = (offset: number): number => {
    if (facts.bytesPerSample !== undefined) {
      return Math.floor((Math.max(0, offset - facts.headerBytes) / facts.bytesPerSample / rate) * 1000);
    }
    while (marks.length > 1 && marks[0]!.bytes <= offset) marks.shift();
    const mark = marks[0];
    if (!mark) return Math.floor((receivedSamples / rate) * 1000);
    const span = mark.bytes - mark.startBytes;
    const fraction = span > 0 ? Math.min(1, Math.max(0, (offset - mark.startBytes) / span)) : 1;
    return Math.floor(((mark.startSamples + fraction * (mark.samples - mark.startSamples)) / rate) * 1000);
  };

  const cut = (size: number): AudioChunk => {
    let data: Uint8Array;
    const first = buffered[0]!;
    if (first.length >= size) {
      // Within one piece: a view, no copy (pieces are never written to after they arrive).
      data = first.subarray(0, size);
      if (first.length === size) buffered.shift();
      else buffered[0] = first.subarray(size);
    } else {
      data = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        const head = buffered[0]!;
        const take = Math.min(head.length, size - filled);
        data.set(head.subarray(0, take), filled);
        filled += take;
        if (take === head.length) buffered.shift();
        else buffered[0] = head.subarray(take);
      }
    }
    bufferedBytes -= size;
    const chunk = { data, sequence: sequence++, offsetBytes: emittedBytes, startMs: msAt(emittedBytes) };
    emittedBytes += size;
    return chunk;
  };

  return {
    /** Adds a piece; returns the chunks it completed. */
    add(piece: AudioPiece): AudioChunk[] {
      if (piece.data.length > 0) {
        marks.push({ startBytes: receivedBytes, startSamples: receivedSamples, bytes: receivedBytes + piece.data.length, samples: receivedSamples + piece.samples });
        buffered.push(piece.data);
        bufferedBytes += piece.data.length;
        receivedBytes += piece.data.length;
      }
      receivedSamples += piece.samples;
      const out: AudioChunk[] = [];
      while (bufferedBytes >= options.chunkBytes) out.push(cut(options.chunkBytes));
      return out;
    },
    /** The last, shorter chunk, if any bytes are left. */
    flush(): AudioChunk[] {
      return bufferedBytes > 0 ? [cut(bufferedBytes)] : [];
    },
    totals() {
      return { bytes: emittedBytes, chunks: sequence, durationMs: Math.round((receivedSamples / rate) * 1000), samples: receivedSamples };
    },
  };
}
