/**
 * The record framing's arithmetic (record/format.ts): a record's size from its length field is exact for
 * every u32 length, so a damaged length can never pass for a short record.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
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

  it('recovery of a segment with such a length in an acknowledged record ends, with WAL_CORRUPT (it spun for good)', () => {
    // Found by review: with the old arithmetic a length of 0xfffffff1..0xffffffff (LSN intact) decoded as
    // short, and the scan refilled its window from the same offset forever. In a child: a hang is a timeout.
    const url = (file: string): string => JSON.stringify(pathToFileURL(path.resolve('dist', file)).href);
    const script = `
      const { Wal } = await import(${url('wal/index.js')});
      const { MemoryFileSystem } = await import(${url('fs/index.js')});
      const { recoverSegments } = await import(${url('wal/recovery.js')});
      const { recordBytes } = await import(${url('record/format.js')});
      const { SEGMENT_HEADER_BYTES } = await import(${url('wal/format.js')});
      const DIR = '/data/wal';
      const fs = new MemoryFileSystem();
      const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 16 * 1024 * 1024, syncMode: 'inline' });
      const payload = Buffer.alloc(1000, 5);
      for (let i = 0; i < 9000; i++) { wal.append(payload); if (i % 500 === 499) await wal.sync(); }
      await wal.sync();
      await wal.close();
      const names = (await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
      const h = await fs.open(DIR + '/' + names[0], 'r+');
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, 0xfffffff8, true);
      await h.writev([length], SEGMENT_HEADER_BYTES + 1000 * recordBytes(1000) + 4);
      await h.close();
      try {
        await recoverSegments(fs, DIR, names, false);
        console.log('recovered');
      } catch (err) {
        console.log(err.code);
      }
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('WAL_CORRUPT');
  }, 40_000);
});
