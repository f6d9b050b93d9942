/** Sample conversions between the engine's 16-bit integers, the resampler's floats and the wire formats. */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** 16-bit samples as little-endian bytes (a copy: the result owns its memory and can be transferred). */
export function int16ToLittleEndian(samples: Int16Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength));
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, samples[i]!, true);
  return out;
}

export function int16ToFloat32(samples: Int16Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! / 32768;
  return out;
}

/** Floats in [-1, 1] to 16-bit integers, rounding and clipping (a resampler may overshoot slightly). */
export function float32ToInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.round(samples[i]! * 32768);
    out[i] = v > 32767 ? 32767 : Math.max(v, -32768);
  }
  return out;
}

const MULAW_SEGMENT_ENDS = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];

/**
 * ITU-T G.711 mu-law, one byte per sample: the reference algorithm (Sun's g711.c, as in Python's
 * audioop and sox) on the top 14 bits, with bias 33 and clipping at 8159.
 */
export function int16ToMulaw(samples: Int16Array): Uint8Array {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let value = samples[i]! >> 2;
    let mask = 0xff;
    if (value < 0) {
      value = -value;
      mask = 0x7f;
    }
    if (value > 8159) value = 8159;
    value += 0x21;
    let segment = 0;
    while (segment < 8 && value > MULAW_SEGMENT_ENDS[segment]!) segment++;
    out[i] = (segment >= 8 ? 0x7f : (segment << 4) | ((value >> (segment + 1)) & 0x0f)) ^ mask;
  }
  return out;
}
