/**
 * The addon's two ways of computing CRC-32 (fs/native/record-crc.c): carry-less multiplication where the
 * CPU has PCLMULQDQ, a table elsewhere. Both must give zlib's CRC-32 for every length (the fold takes whole
 * 64- and 16-byte blocks and leaves the rest to the table, so every remainder is a case) and at every
 * alignment; the folding constants are derived here from the polynomial, not copied; and the WAL sends
 * the addon every record only where it multiplies carry-less (wal/crc-walk.ts crcAddonRecordBytesMax).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { recordCrcFiller, recordCrcMethod, recordCrcWalker, type RecordCrcFill } from '../fs/page-cache.js';
import { seededRandom } from '../core/random.js';
import { SALT_ANY, decodeRecord, recordBytes, RECORD_PAYLOAD_BYTES_OFFSET } from '../record/format.js';
import { crcAddonRecordBytesMax } from '../wal/crc-walk.js';
import { CRC_WALK_RECORD_BYTES_MAX } from '../wal/limits.js';
import { Staging, type Piece } from '../wal/staging.js';
import { patternBytes } from './helpers/payload.js';
import { countCalls } from './helpers/counting.js';

const ADDON = new URL('../build/Release/flushpoint_native.node', import.meta.url);
const SOURCE = new URL('../fs/native/record-crc.c', import.meta.url);

/** Whether this CPU has PCLMULQDQ (Linux: /proc/cpuinfo's flags) and is x86-64. */
function cpuHasClmul(): boolean {
  if (process.arch !== 'x64') return false;
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
  return flags.split(/\s+/).includes('pclmulqdq');
}

/**
 * One record per payload length in `lengths`, framed one after another from `at` in a buffer of random
 * bytes (so a length word is the only thing the walk reads of a header), CRC words zero.
 */
function frame(lengths: readonly number[], at: number, seed: number): { buf: Uint8Array; starts: number[]; end: number } {
  const total = lengths.reduce((sum, n) => sum + recordBytes(n), 0);
  const rnd = seededRandom(seed);
  const buf = new Uint8Array(at + total + 8);
  for (let i = 0; i < buf.length; i++) buf[i] = rnd.int(256);
  const view = new DataView(buf.buffer);
  const starts: number[] = [];
  let off = at;
  for (const n of lengths) {
    starts.push(off);
    view.setUint32(off, 0, true);
    view.setUint32(off + RECORD_PAYLOAD_BYTES_OFFSET, n, true);
    off += recordBytes(n);
  }
  return { buf, starts, end: off };
}

/** zlib's CRC-32 of each record's [length word, end), as the format defines it (record/format.ts). */
function expectZlibCrcs(f: RecordCrcFill, lengths: readonly number[], seed: number): void {
  for (let at = 0; at < 16; at += 3) {
    const { buf, starts, end } = frame(lengths, at, seed + at);
    expect(f(buf, at, end, Number.MAX_SAFE_INTEGER)).toBe(end);
    const view = new DataView(buf.buffer);
    starts.forEach((start, i) => {
      const size = recordBytes(lengths[i] as number);
      const want = zlib.crc32(buf.subarray(start + RECORD_PAYLOAD_BYTES_OFFSET, start + size));
      if (view.getUint32(start, true) !== want) expect.fail(`payload ${lengths[i]} at offset ${at}: CRC ${view.getUint32(start, true).toString(16)}, zlib ${want.toString(16)}`);
    });
    expect((recordCrcWalker() as NonNullable<ReturnType<typeof recordCrcWalker>>)(buf, at, end, Number.MAX_SAFE_INTEGER)).toBe(end);
  }
}

/** x^n mod P(x) for CRC-32's P = 0x104C11DB7, bit-reflected (32 bits) and shifted left by one: a folding constant. */
function foldingConstant(n: number): string {
  const P = 0x1_04c1_1db7n;
  let r = 1n;
  for (let i = 0; i < n; i++) {
    r <<= 1n;
    if (r & 0x1_0000_0000n) r ^= P;
  }
  let reflected = 0n;
  for (let i = 0; i < 32; i++) if (r & (1n << BigInt(i))) reflected |= 1n << BigInt(31 - i);
  return `0x${(reflected << 1n).toString(16).padStart(9, '0')}`;
}

const LENGTHS = [...Array.from({ length: 1100 }, (_, i) => i), 2044, 2048, 4072, 4096, 4097, 8191, 65_536 + 3, 300_001];

describe('CRC-32 in the addon', () => {
  it('multiplies carry-less exactly where the CPU can', () => {
    expect(recordCrcMethod()).toBe(cpuHasClmul() ? 'clmul' : 'table');
  });

  it('gives zlib\'s CRC-32 for every payload length up to 1,100 bytes and some large ones, at every alignment', () => {
    expectZlibCrcs(recordCrcFiller() as RecordCrcFill, LENGTHS, 1);
  });

  it('by table too (FLUSHPOINT_CRC_TABLE_ONLY, in a child process): the same CRCs as zlib', () => {
    const script = `
      const a = require(${JSON.stringify(ADDON.pathname)});
      const zlib = require('node:zlib');
      let bad = 0, n = 0;
      for (let len = 0; len < 700; len++) for (let at = 0; at < 8; at += 3) {
        const size = (24 + len + 7) & ~7;
        const buf = new Uint8Array(at + size).map((_, i) => (i * 131 + len) & 255);
        new DataView(buf.buffer).setUint32(at + 4, len, true);
        a.recordCrcFill(buf, at, at + size, 1e15);
        n++;
        if (new DataView(buf.buffer).getUint32(at, true) !== zlib.crc32(buf.subarray(at + 4, at + size))) bad++;
      }
      console.log(JSON.stringify({ method: a.recordCrcMethod(), bad, n }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, FLUSHPOINT_CRC_TABLE_ONLY: '1' } });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ method: 'table', bad: 0, n: 2100 });
  });

  it('folds with constants derived from the polynomial (x^(D+32) and x^(D-32) mod P for D = 512 and 128)', () => {
    const source = fs.readFileSync(SOURCE, 'utf8').toLowerCase();
    const by64 = source.match(/by64 = _mm_set_epi64x\((0x[0-9a-f]+)ll, (0x[0-9a-f]+)ll\)/);
    const by16 = source.match(/by16 = _mm_set_epi64x\((0x[0-9a-f]+)ll, (0x[0-9a-f]+)ll\)/);
    // _mm_set_epi64x takes (high, low): the high half is multiplied by x^(D-32), the low by x^(D+32).
    expect(by64?.slice(1, 3)).toEqual([foldingConstant(512 - 32), foldingConstant(512 + 32)]);
    expect(by16?.slice(1, 3)).toEqual([foldingConstant(128 - 32), foldingConstant(128 + 32)]);
  });
});

describe('which records the WAL sends the addon', () => {
  it('every record where it multiplies carry-less, those up to CRC_WALK_RECORD_BYTES_MAX where it walks a table', () => {
    expect(crcAddonRecordBytesMax('clmul')).toBe(Number.MAX_SAFE_INTEGER);
    expect(crcAddonRecordBytesMax('table')).toBe(CRC_WALK_RECORD_BYTES_MAX);
    expect(crcAddonRecordBytesMax(null)).toBe(CRC_WALK_RECORD_BYTES_MAX);
  });

  it('staging with no bound leaves a 4 KiB record\'s CRC to the addon, a step of records at a time as they come, and the records decode', () => {
    const { counting, calls } = countCalls(recordCrcFiller() as RecordCrcFill);
    const staging = new Staging(1 << 20, 256 * 1024, { segmentFirstLsn: 0, salt: 0, offset: 0, capacityBytes: 0 }, seededRandom(5), counting, Number.MAX_SAFE_INTEGER);
    // A call per CRC_FILL_STEP_BYTES as records come (32 KiB: 8 records of 4,120 B), the rest at the freeze.
    for (let lsn = 1; lsn <= 7; lsn++) staging.add(lsn, patternBytes(lsn, 4096));
    expect(calls()).toBe(0);
    staging.add(8, patternBytes(8, 4096));
    expect(calls()).toBe(1);
    for (let lsn = 9; lsn <= 20; lsn++) staging.add(lsn, patternBytes(lsn, 4096));
    expect(calls()).toBe(2);
    const pieces = staging.freeze();
    expect(calls()).toBe(3);
    const bytes = Buffer.concat((pieces[0] as Piece).buffers);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let off = 32; // the segment header (SEGMENT_HEADER_BYTES)
    for (let lsn = 1; lsn <= 20; lsn++) {
      const size = decodeRecord(bytes, view, off, bytes.length, lsn, SALT_ANY);
      expect(size, `LSN ${lsn}`).toBeGreaterThan(0);
      off += size;
    }
  });
});
