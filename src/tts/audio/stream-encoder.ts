/**
 * What every output format looks like to the synthesis pipeline: 16-bit mono samples at the stream's
 * rate go in, sentence by sentence; bytes of the finished format come out. An encoder lives as long as
 * its audio stream, so MP3 frames and Ogg pages run on across sentences as one file.
 */
export interface StreamEncoder {
  /** Encodes the next samples; returns the bytes ready to send (possibly none yet). */
  encode(samples: Int16Array): Uint8Array;
  /** Ends the stream and returns its last bytes; the encoder is spent afterwards. */
  finish(): Uint8Array;
  /** Frees the encoder without finishing (a cancelled stream). */
  release(): void;
}

/** Joins typed arrays into one (zero or one part costs no copy). */
export function concatArrays<T extends Uint8Array | Int16Array>(parts: readonly T[], create: (length: number) => T): T {
  if (parts.length === 1) return parts[0]!;
  const out = create(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Joins byte arrays into one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return concatArrays(parts, (n) => new Uint8Array(n));
}
