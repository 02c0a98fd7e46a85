/**
 * The record framing's arithmetic (record/format.ts): a record's size from its length field is exact for
 * every u32 length, so a damaged length can never pass for a short record.
 */
import { describe, expect, it } from 'vitest';
import { crc32Range } from '../core/crc.js';
import { DECODE_SHORT, RECORD_LSN_OFFSET, RECORD_PAYLOAD_BYTES_OFFSET, decodeRecord, recordBytes } from '../record/format.js';

describe('recordBytes', () => {
  it('is the framed size, 8-aligned, for small lengths and for every length up to 2^32 - 1', () => {
    expect(recordBytes(0)).toBe(24);
    expect(recordBytes(1)).toBe(32);
    expect(recordBytes(128)).toBe(152);
    for (const p of [0x7fff_ffd8, 0x7fff_ffe0, 0x7fff_ffe1, 0x8000_0000, 0xffff_ffe9, 0xffff_fff0, 0xffff_ffff]) {
      const size = recordBytes(p);
      expect(size % 8).toBe(0);
      expect(size).toBeGreaterThanOrEqual(p + 24);
      expect(size).toBeLessThan(p + 32);
    }
  });

  it('a header whose length wrapped the old 32-bit arithmetic (0xffffffe9 -> 8 bytes) is refused as short, whatever its CRC', () => {
    // Found by review: such a header with a CRC over its next 4 bytes decoded as an 8-byte record.
    const buf = new Uint8Array(64);
    const view = new DataView(buf.buffer);
    view.setUint32(RECORD_PAYLOAD_BYTES_OFFSET, 0xffff_ffe9, true);
    view.setUint32(RECORD_LSN_OFFSET, 1, true); // LSN 1, salt 0: all that is checked before the size
    view.setUint32(0, crc32Range(buf, RECORD_PAYLOAD_BYTES_OFFSET, 8), true);
    expect(decodeRecord(buf, view, 0, buf.length, 0, 0)).toBe(DECODE_SHORT);
  });
});
