/**
 * An Ogg page writer (RFC 3533) for one logical stream: packets go in, complete pages come out, each
 * with its granule position, sequence number and CRC. Small enough to own rather than depend on, and
 * the only container logic the Ogg Opus encoder needs.
 */

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/** Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0, no final XOR. */
export function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[i]!) & 0xff]!) >>> 0;
  return crc;
}

const FLAG_BOS = 0x02;
const FLAG_EOS = 0x04;
// A page holds at most 255 lacing values; flush well before, and keep pages small for streaming.
const MAX_SEGMENTS = 250;
const MAX_PAGE_DATA = 8 * 1024;

export interface OggPageWriter {
  /** Adds a packet that completes at `granule`; returns any pages that filled up. */
  add(packet: Uint8Array, granule: bigint): Uint8Array[];
  /** Writes out the packets added so far as one page (nothing if none); `last` marks end of stream. */
  flush(last?: boolean): Uint8Array[];
}

export function createOggPageWriter(serial: number): OggPageWriter {
  let sequence = 0;
  let packets: Uint8Array[] = [];
  let segments: number[] = [];
  let dataBytes = 0;
  let granule = 0n;

  const page = (flags: number): Uint8Array => {
    const out = new Uint8Array(27 + segments.length + dataBytes);
    const view = new DataView(out.buffer);
    out.set([0x4f, 0x67, 0x67, 0x53]); // "OggS"
    out[4] = 0; // version
    out[5] = flags | (sequence === 0 ? FLAG_BOS : 0);
    view.setBigInt64(6, granule, true);
    view.setUint32(14, serial >>> 0, true);
    view.setUint32(18, sequence++, true);
    out[26] = segments.length;
    out.set(segments, 27);
    let offset = 27 + segments.length;
    for (const p of packets) {
      out.set(p, offset);
      offset += p.length;
    }
    view.setUint32(22, oggCrc(out), true);
    packets = [];
    segments = [];
    dataBytes = 0;
    return out;
  };

  const writer: OggPageWriter = {
    add(packet, at) {
      const lacing = Math.floor(packet.length / 255) + 1;
      const out = segments.length + lacing > MAX_SEGMENTS ? writer.flush() : [];
      for (let i = 0; i < lacing - 1; i++) segments.push(255);
      segments.push(packet.length % 255);
      packets.push(packet);
      dataBytes += packet.length;
      granule = at;
      if (dataBytes >= MAX_PAGE_DATA) out.push(...writer.flush());
      return out;
    },
    flush(last = false) {
      if (packets.length === 0 && !last) return [];
      return [page(last ? FLAG_EOS : 0)];
    },
  };
  return writer;
}
