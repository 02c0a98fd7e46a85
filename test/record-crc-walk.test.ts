/**
 * The addon's recordCrcWalk (fs/native/record-crc.c) and recovery's use of it (wal/recovery.ts): the walk
 * checks the CRC-32 of a run of framed records in one call and stops at the first record it cannot vouch
 * for; recovery skips the JavaScript CRC only for records the walk went past. Recovery must decide exactly
 * as it does without the walk, on intact logs and on every kind of damage.
 */
import { describe, expect, it } from 'vitest';
import { recordCrcFiller, recordCrcMethod, recordCrcWalker, type RecordCrcFill, type RecordCrcWalk } from '../fs/page-cache.js';
import { MemoryFileSystem, type FileSystem } from '../fs/index.js';
import { encodeRecord, recordBytes, RECORD_HEADER_BYTES } from '../record/format.js';
import { recoverSegments } from '../wal/recovery.js';
import { readSegmentRaw, type SegmentScan } from '../wal/reader.js';
import { SEGMENT_HEADER_BYTES } from '../wal/format.js';
import { Wal } from '../wal/index.js';
import { seededRandom } from '../core/random.js';
import { patternBytes } from './helpers/payload.js';
import { countCalls } from './helpers/counting.js';

const walk = recordCrcWalker();

/** What `run` returns, or the code and message of what it threw. */
async function settled(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { code: e.code, message: e.message };
  }
}

/**
 * Records of random payload sizes (0 to `payloadMax` bytes) encoded one after another from offset 0;
 * `withCrc` false stores 0 for their CRCs (as the WAL's staging does before recordCrcFill).
 */
function records(seed: number, count: number, payloadMax: number, withCrc = true): { buf: Buffer; starts: number[]; end: number } {
  const rnd = seededRandom(seed);
  const sizes = Array.from({ length: count }, () => rnd.int(payloadMax + 1));
  const total = sizes.reduce((sum, s) => sum + recordBytes(s), 0);
  const buf = Buffer.alloc(total + 64);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const starts: number[] = [];
  let at = 0;
  sizes.forEach((size, i) => {
    starts.push(at);
    at = encodeRecord(buf, view, at, i + 1, rnd.int(4), 0x5eed0000 + seed, patternBytes(seed * 1000 + i, size), withCrc);
  });
  return { buf, starts, end: at };
}

describe('recordCrcWalk', () => {
  it('is built with the addon', () => {
    expect(walk).not.toBeNull();
  });

  it('walks every intact record, from any record start, up to a size limit, and computes zlib\'s CRC-32', () => {
    const w = walk as RecordCrcWalk;
    for (const seed of [1, 2, 3, 4]) {
      const { buf, starts, end } = records(seed, 300, 3000);
      expect(w(buf, 0, end, Number.MAX_SAFE_INTEGER)).toBe(end);
      expect(w(buf, starts[150] as number, end, Number.MAX_SAFE_INTEGER)).toBe(end);
      // Stops before the first record over the limit; the caller checks that one and walks on after it.
      const limit = 1024;
      const firstLarge = starts.findIndex((s, i) => (i + 1 < starts.length ? (starts[i + 1] as number) : end) - s > limit);
      expect(firstLarge).toBeGreaterThanOrEqual(0);
      expect(w(buf, 0, end, limit)).toBe(starts[firstLarge]);
      // A window that ends inside a record stops before that record.
      expect(w(buf, 0, (starts[200] as number) + RECORD_HEADER_BYTES + 1, Number.MAX_SAFE_INTEGER)).toBe(starts[200]);
      // What follows the last record is zeros: the walk stops there too.
      expect(w(buf, 0, buf.length, Number.MAX_SAFE_INTEGER)).toBe(end);
    }
  });

  it('stops at the record where any one byte was changed, whichever byte (its CRC covers everything after itself)', () => {
    const w = walk as RecordCrcWalk;
    const rnd = seededRandom(77);
    const { buf, starts, end } = records(5, 200, 600);
    for (let n = 0; n < 500; n++) {
      const i = rnd.int(starts.length);
      const start = starts[i] as number;
      const next = i + 1 < starts.length ? (starts[i + 1] as number) : end;
      const at = start + rnd.int(next - start);
      const bit = 1 << rnd.int(8);
      buf[at] = (buf[at] as number) ^ bit;
      expect(w(buf, 0, end, Number.MAX_SAFE_INTEGER)).toBe(start);
      buf[at] = (buf[at] as number) ^ bit;
    }
    expect(w(buf, 0, end, Number.MAX_SAFE_INTEGER)).toBe(end);
  });

  it('refuses bad arguments with a TypeError and reads nothing outside the array', () => {
    const w = walk as RecordCrcWalk;
    const { buf, end } = records(6, 10, 100);
    const call = (...args: unknown[]) => (w as unknown as (...a: unknown[]) => number)(...args);
    expect(() => call([1, 2, 3], 0, 3, 100)).toThrow(TypeError);
    expect(() => call(new Uint16Array(8), 0, 8, 100)).toThrow(TypeError);
    expect(() => call(buf, 0, buf.length + 1, 100)).toThrow(TypeError);
    expect(() => call(buf, 10, 5, 100)).toThrow(TypeError);
    expect(() => call(buf, 0.5, 5, 100)).toThrow(TypeError);
    expect(() => call(buf, 0, end)).toThrow(TypeError);
    // A view that starts inside its buffer: offsets are the view's.
    const inner = buf.subarray(0, end);
    const shifted = Buffer.concat([Buffer.alloc(8), inner]).subarray(8);
    expect(w(shifted, 0, end, 1 << 20)).toBe(end);
  });
});

describe('recordCrcFill', () => {
  const fill = recordCrcFiller();

  it('is built with the addon', () => {
    expect(fill).not.toBeNull();
  });

  it('stores exactly the CRCs encodeRecord computes, up to a size limit, and returns the end of the run', () => {
    const f = fill as RecordCrcFill;
    for (const seed of [1, 2, 3, 4]) {
      const want = records(seed, 300, 3000);
      const got = records(seed, 300, 3000, false);
      expect(got.end).toBe(want.end);
      expect(got.buf.equals(want.buf)).toBe(false); // the CRCs are missing
      // A run from a record in the middle to the end: the records before it keep their zeros.
      const mid = got.starts[150] as number;
      expect(f(got.buf, mid, got.end, Number.MAX_SAFE_INTEGER)).toBe(got.end);
      expect(got.buf.subarray(mid).equals(want.buf.subarray(mid))).toBe(true);
      expect(got.buf.readUInt32LE(0)).toBe(0);
      expect(f(got.buf, 0, mid, Number.MAX_SAFE_INTEGER)).toBe(mid);
      expect(got.buf.equals(want.buf)).toBe(true);
      // With a limit, the records over it are walked over, their CRC word left as it was.
      const limited = records(seed, 300, 3000, false);
      const limit = 1024;
      expect(f(limited.buf, 0, limited.end, limit)).toBe(limited.end);
      limited.starts.forEach((start, i) => {
        const next = i + 1 < limited.starts.length ? (limited.starts[i + 1] as number) : limited.end;
        expect(limited.buf.readUInt32LE(start)).toBe(next - start > limit ? 0 : want.buf.readUInt32LE(start));
      });
      // What it filled, the walk vouches for.
      expect((walk as RecordCrcWalk)(got.buf, 0, got.end, Number.MAX_SAFE_INTEGER)).toBe(got.end);
    }
  });

  it('stops before a record that runs past the end of the run, writing nothing there', () => {
    const f = fill as RecordCrcFill;
    const { buf, starts } = records(7, 50, 400, false);
    const cut = (starts[30] as number) + RECORD_HEADER_BYTES + 1;
    expect(f(buf, 0, cut, Number.MAX_SAFE_INTEGER)).toBe(starts[30]);
    expect(buf.readUInt32LE(starts[30] as number)).toBe(0);
    expect(buf.readUInt32LE(starts[29] as number)).not.toBe(0);
  });

  it('refuses bad arguments with a TypeError, writing nothing', () => {
    const f = fill as RecordCrcFill;
    const { buf, end } = records(6, 10, 100, false);
    const before = Buffer.from(buf);
    const call = (...args: unknown[]) => (f as unknown as (...a: unknown[]) => number)(...args);
    expect(() => call([1, 2, 3], 0, 3, 100)).toThrow(/recordCrcFill: the first argument must be a Uint8Array/);
    expect(() => call(new Uint16Array(8), 0, 8, 100)).toThrow(TypeError);
    expect(() => call(buf, 0, buf.length + 1, 100)).toThrow(TypeError);
    expect(() => call(buf, 10, 5, 100)).toThrow(TypeError);
    expect(() => call(buf, 0.5, 5, 100)).toThrow(TypeError);
    expect(() => call(buf, 0, end)).toThrow(/recordCrcFill\(uint8Array, start, end, recordBytesMax\)/);
    expect(buf.equals(before)).toBe(true);
    // A view that starts inside its buffer, over shared memory (the staging's chunks): offsets are the view's.
    const shared = new Uint8Array(new SharedArrayBuffer(end + 16), 16, end);
    shared.set(buf.subarray(0, end));
    expect(f(shared, 0, end, 1 << 20)).toBe(end);
    expect((walk as RecordCrcWalk)(shared, 0, end, 1 << 20)).toBe(end);
  });
});

describe('recovery with the walk decides as without it', () => {
  const DIR = '/data/wal';

  /** A log of 3 small segments of mixed record sizes (some over the walk's limit), closed. */
  async function log(seed: number): Promise<{ fs: MemoryFileSystem; names: string[] }> {
    const fs = new MemoryFileSystem();
    const rnd = seededRandom(seed);
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 64 * 1024, syncMode: 'inline' });
    while ((await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).length < 3) {
      const batch = 1 + rnd.int(8);
      for (let i = 0; i < batch; i++) wal.append(patternBytes(seed + wal.lastLsn, rnd.int(10) === 0 ? 2000 + rnd.int(6000) : rnd.int(300)));
      await wal.sync();
    }
    await wal.close();
    return { fs, names: (await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort() };
  }

  async function outcome(fs: FileSystem, names: string[], strict: boolean, crcWalk: RecordCrcWalk | null): Promise<unknown> {
    return settled(async () => {
      const r = await recoverSegments(fs, DIR, names, strict, crcWalk);
      return { segments: r.segments.map((s) => [s.name, s.firstLsn, s.lastLsn, s.endOffset]), torn: r.torn };
    });
  }

  it('on intact logs, calling the walk', async () => {
    const { counting, calls } = countCalls(walk as RecordCrcWalk);
    for (const seed of [1, 2, 3]) {
      const { fs, names } = await log(seed);
      const plain = await outcome(fs, names, false, null);
      expect(plain).toHaveProperty('segments');
      expect(await outcome(fs, names, false, counting)).toEqual(plain);
    }
    expect(calls()).toBeGreaterThan(0);
  });

  it('does not call the walk for records it would stop at for their size (a log of large records), and walks them in one call per segment where it takes every size', async () => {
    const { counting, calls } = countCalls(walk as RecordCrcWalk);
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 64 * 1024, syncMode: 'inline' });
    for (let i = 0; i < 40; i++) wal.append(patternBytes(i, 3000));
    await wal.sync();
    await wal.close();
    const names = (await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
    const r = await recoverSegments(fs, DIR, names, false, counting);
    expect(r.segments.at(-1)?.lastLsn).toBe(40);
    // By table the walk takes records up to CRC_WALK_RECORD_BYTES_MAX (2 KiB): never called for these.
    // Carry-less it takes every record (wal/crc-walk.ts crcAddonRecordBytesMax): one call per segment.
    if (recordCrcMethod() === 'clmul') expect(calls()).toBe(names.length);
    else expect(calls()).toBe(0);
  });

  it('on 120 damaged logs: a flipped bit, zeroed bytes or a cut, anywhere in any segment, strict or not', async () => {
    for (let seed = 1; seed <= 120; seed++) {
      const { fs, names } = await log(1000 + seed);
      const rnd = seededRandom(seed);
      const name = names[rnd.int(names.length)] as string;
      const h = await fs.open(`${DIR}/${name}`, 'r+');
      const { sizeBytes } = await h.stat();
      const at = 64 + rnd.int(sizeBytes - 64);
      const kind = rnd.int(3);
      if (kind === 0) {
        const b = new Uint8Array(1);
        await h.read(b, 0, 1, at);
        b[0] = (b[0] as number) ^ (1 << rnd.int(8));
        await h.writev([b], at);
      } else if (kind === 1) await h.writev([new Uint8Array(1 + rnd.int(64))], at);
      else await h.truncate(at);
      await h.close();
      const strict = rnd.int(2) === 0;
      expect(await outcome(fs, names, strict, walk), `seed ${seed}`).toEqual(await outcome(fs, names, strict, null));
    }
  });
});

describe('the WAL\'s reader with the walk reads as without it', () => {
  const DIR = '/data/wal';

  async function spans(scan: SegmentScan, chunkBytes: number): Promise<unknown> {
    return settled(async () => {
      const out: unknown[] = [];
      for await (const span of readSegmentRaw(scan, chunkBytes)) out.push([span.firstLsn, span.lastLsn, Buffer.from(span.bytes).toString('base64')]);
      return out;
    });
  }

  it('on 80 logs, intact and damaged below the durable end, in chunks of 64 B to 1 MiB, from any LSN', async () => {
    const { counting, calls } = countCalls(walk as RecordCrcWalk);
    for (let seed = 1; seed <= 80; seed++) {
      const fs = new MemoryFileSystem();
      const rnd = seededRandom(seed);
      const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: 1024 * 1024, syncMode: 'inline' });
      for (let b = 0; b < 40; b++) {
        for (let i = 1 + rnd.int(8); i > 0; i--) wal.append(patternBytes(seed + wal.lastLsn, rnd.int(10) === 0 ? 2000 + rnd.int(6000) : rnd.int(300)));
        await wal.sync();
      }
      const lastLsn = wal.lastLsn;
      await wal.close();
      const names = (await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
      const seg = (await recoverSegments(fs, DIR, names, false, null)).segments[0]!;
      if (seed % 2 === 0) {
        const h = await fs.open(`${DIR}/${seg.name}`, 'r+');
        const at = SEGMENT_HEADER_BYTES + rnd.int(seg.endOffset - SEGMENT_HEADER_BYTES);
        const byte = new Uint8Array(1);
        await h.read(byte, 0, 1, at);
        byte[0] = (byte[0] as number) ^ (1 << rnd.int(8));
        await h.writev([byte], at);
        await h.close();
      }
      const fromLsn = 1 + rnd.int(lastLsn);
      const scan = (crcWalk: RecordCrcWalk | null): SegmentScan => ({
        fs,
        path: `${DIR}/${seg.name}`,
        segmentFirstLsn: seg.firstLsn,
        salt: seg.salt,
        endOffset: seg.endOffset,
        start: { lsn: seg.firstLsn, offset: SEGMENT_HEADER_BYTES },
        fromLsn,
        toLsn: lastLsn,
        truncated: () => false,
        crcWalk,
      });
      const chunkBytes = [64, 4096, 65536, 1024 * 1024][rnd.int(4)] as number;
      const plain = await spans(scan(null), chunkBytes);
      if (seed % 2 === 1) expect(Array.isArray(plain), `seed ${seed}`).toBe(true);
      expect(await spans(scan(counting), chunkBytes), `seed ${seed}`).toEqual(plain);
    }
    expect(calls()).toBeGreaterThan(0);
  });
});
