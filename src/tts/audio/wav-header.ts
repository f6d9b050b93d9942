/**
 * The 44-byte RIFF/WAVE header of a PCM s16le stream whose length is not known when it starts. Both
 * length fields are 0xFFFFFFFF, as the AudioFormat contract allows: speech is synthesised sentence by
 * sentence, so the header leaves before the total is known, and readers (Python's `wave`, sox, browsers)
 * then read the data chunk to the end of the file.
 */
export function streamingWavHeader(sampleRateHz: number, channels: number): Uint8Array {
  const header = new Uint8Array(44);
  const view = new DataView(header.buffer);
  const ascii = (offset: number, text: string) => {
    for (let i = 0; i < text.length; i++) header[offset + i] = text.charCodeAt(i);
  };
  const blockAlign = channels * 2;
  ascii(0, "RIFF");
  view.setUint32(4, 0xffffffff, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRateHz, true);
  view.setUint32(28, sampleRateHz * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, 0xffffffff, true);
  return header;
}
