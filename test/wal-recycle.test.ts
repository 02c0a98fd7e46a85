/**
 * Segment recycling (wal/segment-recycler.ts) and the decision table's rows for format version 3
 * (wal/recovery.ts, rows 1r..5r): a segment written over a recycled file has old bytes after its live
 * data, where a fresh one has zeros.
 *
 * The log every row starts from (segments of 16 KiB): old segments of 100-byte payloads (128-byte
 * records, 127 a segment) are written and truncated until a roll takes a recycled file; its old bytes
 * are kept (`stale`) before the first commit overwrites them. In that segment (D, first LSN d) the
 * rows then commit 60-byte payloads (88-byte records, so X falls in the middle of an old record):
 *
 *   batch 1: d (the roll)    batch P: d+1, d+2    batch Q: d+3, d+4    then the end marker at X
 *
 * Each row damages the disk, opens it, and states the outcome.
 */
import { describe, expect, it } from 'vitest';
import { RECYCLE_SEGMENTS_MAX, Wal } from '../wal/index.js';
import { FlushpointError, assert, isFlushpointError } from '../core/errors.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { seededRandom } from '../core/random.js';
import { SALT_ANY, decodeRecord, recordBytes, recordLsn, recordSalt, RECORD_HEADER_BYTES } from '../record/format.js';
import { END_MARKER_BYTES, FORMAT_VERSION, FORMAT_VERSION_RECYCLED, SEGMENT_HEADER_BYTES, decodeSegmentHeader, segmentName } from '../wal/format.js';
import { TORN_RECYCLED_BYTES_MIN } from '../wal/recovery.js';
import { FREE_NAME_RE } from '../wal/segment-recycler.js';
import { deferred, until } from './helpers/async.js';

const DIR = '/wal';
const SEGMENT_BYTES = 16384;
const OLD_PAYLOAD_BYTES = 100;
const NEW_PAYLOAD_BYTES = 60;
const NEW_RECORD_BYTES = recordBytes(NEW_PAYLOAD_BYTES);

function payload(lsn: number, bytes: number): Uint8Array {
  return new Uint8Array(bytes).fill(lsn & 0xff);
}

interface RecycledLog {
  fs: MemoryFileSystem;
  /** First LSN of the recycled segment D, and its name. */
  d: number;
  name: string;
  /** The recycled file's bytes before D was written over them. */
  stale: Uint8Array;
  /** Offset of LSN d + i in D. */
  at: (i: number) => number;
  /** Offset just past LSN d + 4: the end of data, where the end marker is. */
  x: number;
}

/**
 * Writes old segments and truncates behind them until the next roll will take a recycled file, keeps
 * that file's bytes, then writes D's batches. `extra` runs on the open log after batch Q.
 */
async function buildRecycledLog(extra?: (wal: Wal) => Promise<void>): Promise<RecycledLog> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, recycleSegments: 2, random: seededRandom(7) });
  // Old segments A, B, C, committed a few records at a time; then truncation frees A and B (their
  // files are full size: each was prepared, zero-filled, before its roll).
  while (wal.stats().segments < 3) {
    for (let k = 0; k < 16; k++) wal.append(payload(wal.lastLsn + 1, OLD_PAYLOAD_BYTES));
    await wal.sync();
  }
  expect(await wal.truncateBefore(wal.durableLsn)).toBe(2);
  expect(wal.stats().segmentsRecycled).toBe(0);
  const free = (await fs.readdir(DIR)).filter((n) => FREE_NAME_RE.test(n)).sort();
  expect(free).toHaveLength(2);
  const snapshots = new Map(free.map((n) => [n, fs.readFileNow(`${DIR}/${n}`)]));
  const before = new Set(await fs.readdir(DIR));
  let d = 0;
  while (d === 0) {
    const lsn = wal.append(payload(wal.lastLsn + 1, NEW_PAYLOAD_BYTES));
    await wal.sync();
    if (wal.stats().segmentsRecycled > 0) d = lsn;
  }
  const name = segmentName(d);
  expect(before.has(name)).toBe(false);
  // The free file D took is the one that is gone now.
  const taken = free.filter((n) => !(fsHas(fs, n)));
  expect(taken).toHaveLength(1);
  const stale = snapshots.get(taken[0] as string) as Uint8Array;
  for (const batch of [2, 2]) {
    for (let k = 0; k < batch; k++) wal.append(payload(wal.lastLsn + 1, NEW_PAYLOAD_BYTES));
    await wal.sync();
  }
  await extra?.(wal);
  await wal.close();
  const at = (i: number): number => SEGMENT_HEADER_BYTES + i * NEW_RECORD_BYTES;
  const image = fs.readFileNow(`${DIR}/${name}`);
  const header = decodeSegmentHeader(image.subarray(0, SEGMENT_HEADER_BYTES));
  expect(header).toMatchObject({ ok: true, version: FORMAT_VERSION_RECYCLED, firstLsn: d });
  expect(image.byteLength).toBe(SEGMENT_BYTES);
  return { fs, d, name, stale, at, x: at(5) };
}

function fsHas(fs: MemoryFileSystem, name: string): boolean {
  try {
    fs.readFileNow(`${DIR}/${name}`);
    return true;
  } catch {
    return false;
  }
}

/** Valid records after `from` in `image` whose salt is not `salt`: old records of another incarnation. */
function staleRecordsAfter(image: Uint8Array, from: number, salt: number): number {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  let n = 0;
  for (let p = from; p + RECORD_HEADER_BYTES <= image.byteLength; p += 8) {
    const size = decodeRecord(image, view, p, image.byteLength, 0, SALT_ANY);
    if (size > 0 && recordSalt(view, p) !== salt) n++;
  }
  return n;
}

/** Puts the old bytes back over [from, from + length): as if the writes there were lost (a torn write). */
function restoreStale(log: RecycledLog, from: number, length: number): void {
  log.fs.corrupt(`${DIR}/${log.name}`, from, log.stale.slice(from, from + length));
}

async function open(fs: MemoryFileSystem, recovery: 'truncate-torn-tail' | 'strict' = 'truncate-torn-tail'): Promise<Wal> {
  return Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, recycleSegments: 2, recovery, random: seededRandom(11) });
}

async function refusal(fs: MemoryFileSystem): Promise<FlushpointError> {
  try {
    const wal = await open(fs);
    await wal.close();
  } catch (err) {
    if (err instanceof FlushpointError && err.code === 'WAL_CORRUPT') return err;
    throw err;
  }
  throw new Error('the log opened; WAL_CORRUPT was expected');
}

async function lsnsOf(wal: Wal): Promise<number[]> {
  const out: number[] = [];
  for await (const r of wal.read()) out.push(r.lsn);
  return out;
}

describe('recovery of a recycled (version-3) segment: the decision table rows 1r..5r', () => {
  it('row 1r, last segment: the end marker with old records of another salt right after it is the clean end; nothing is cut or rewritten', async () => {
    const log = await buildRecycledLog();
    const image = log.fs.readFileNow(`${DIR}/${log.name}`);
    const salt = recordSalt(new DataView(image.buffer, image.byteOffset), log.at(0));
    expect(image.subarray(log.x, log.x + END_MARKER_BYTES).every((b) => b === 0), 'the end marker').toBe(true);
    // (Segment A, a new log's first, handed over to its filled next file half way: D may hold its ~8 KiB of old records.)
    expect(staleRecordsAfter(image, log.x, salt), 'valid old records of another salt follow X').toBeGreaterThan(50);
    const wal = await open(log.fs);
    expect(wal.recovery.tornTail).toBeNull();
    expect(wal.lastLsn).toBe(log.d + 4);
    await wal.close();
    expect(log.fs.readFileNow(`${DIR}/${log.name}`)).toEqual(image);
    expect((await log.fs.readdir(DIR)).some((n) => n.includes('.torn'))).toBe(false);
  });

  it('row 1r, not the last segment: a recycled segment with old bytes after its end marker opens clean (a fresh one with the same bytes is WAL_CORRUPT, row 2)', async () => {
    let lastLsn = 0;
    const log = await buildRecycledLog(async (wal) => {
      // A record too large for what is left of D rolls into the next segment.
      lastLsn = await wal.appendDurable(payload(0, SEGMENT_BYTES - 384));
    });
    const wal = await open(log.fs);
    expect(wal.recovery.tornTail).toBeNull();
    expect(wal.lastLsn).toBe(lastLsn);
    expect((await lsnsOf(wal)).slice(-6)).toEqual([log.d, log.d + 1, log.d + 2, log.d + 3, log.d + 4, lastLsn]);
    await wal.close();
    // The same old bytes after the end of a fresh (version-2) segment that is not the last: corruption,
    // as before (the rule for fresh segments is not loosened).
    const image = log.fs.readFileNow(`${DIR}/${log.name}`);
    const freshHeader = image.slice(0, SEGMENT_HEADER_BYTES);
    new DataView(freshHeader.buffer).setUint32(8, FORMAT_VERSION, true);
    const { crc32 } = await import('../core/crc.js');
    new DataView(freshHeader.buffer).setUint32(28, crc32(freshHeader.subarray(0, 28)), true);
    log.fs.corrupt(`${DIR}/${log.name}`, 0, freshHeader);
    const err = await refusal(log.fs);
    expect(err.file).toBe(`${DIR}/${log.name}`);
    expect(err.offset).toBe(log.x);
    expect(err.message).toMatch(/not the last/);
  });

  it('row 1r: fewer than 24 bytes left after the last record, holding old bytes, is the clean end', async () => {
    let lastLsn = 0;
    const log = await buildRecycledLog(async (wal) => {
      // A record that ends 16 bytes before the end of D: no room for the end marker.
      const x = SEGMENT_HEADER_BYTES + 5 * NEW_RECORD_BYTES;
      lastLsn = await wal.appendDurable(payload(0, SEGMENT_BYTES - 16 - x - RECORD_HEADER_BYTES));
    });
    const file = `${DIR}/${log.name}`;
    log.fs.corrupt(file, SEGMENT_BYTES - 16, new Uint8Array(16).fill(0xa5));
    const wal = await open(log.fs);
    expect(wal.recovery.tornTail).toBeNull();
    expect(wal.lastLsn).toBe(lastLsn);
    await wal.close();
  });

  it('row 2r: garbage at X (the middle of an old record: the end marker lost) in a recycled segment that is not the last is WAL_CORRUPT', async () => {
    const log = await buildRecycledLog(async (wal) => {
      await wal.appendDurable(payload(0, SEGMENT_BYTES - 384));
    });
    restoreStale(log, log.x, END_MARKER_BYTES);
    expect(log.fs.readFileNow(`${DIR}/${log.name}`).subarray(log.x, log.x + END_MARKER_BYTES).some((b) => b !== 0), 'old bytes at X').toBe(true);
    const err = await refusal(log.fs);
    expect(err.file).toBe(`${DIR}/${log.name}`);
    expect(err.offset).toBe(log.x);
    expect(err.message).toMatch(/recycled segment that is not the last/);
  });

  it('row 3r: a damaged first record of the last recycled segment is WAL_CORRUPT', async () => {
    const log = await buildRecycledLog();
    restoreStale(log, log.at(0), RECORD_HEADER_BYTES);
    const err = await refusal(log.fs);
    expect(err.offset).toBe(SEGMENT_HEADER_BYTES);
    expect(err.message).toMatch(/first record of the last segment/);
  });

  it('row 4r: damage followed by a later batch, over old bytes, is WAL_CORRUPT', async () => {
    const log = await buildRecycledLog();
    // LSN d+1 (batch P) lost its header; batch Q (d+3, d+4) is intact after it.
    restoreStale(log, log.at(1), RECORD_HEADER_BYTES);
    const err = await refusal(log.fs);
    expect(err.offset).toBe(log.at(1));
    expect(err.lsn).toBe(log.d + 1);
    expect(err.message).toMatch(new RegExp(`later batch \\(from LSN ${log.d + 3}`));
  });

  it('row 5r: the middle of an old record at X (the last commit torn over old bytes) in the last segment is a torn tail: a bounded cut that puts the end marker back', async () => {
    const log = await buildRecycledLog();
    // Batch Q torn: none of its bytes reached the disk, old bytes are at its place (LSN d+3's offset).
    const xq = log.at(3);
    restoreStale(log, xq, 2 * NEW_RECORD_BYTES + END_MARKER_BYTES);
    const before = log.fs.readFileNow(`${DIR}/${log.name}`);
    const wal = await open(log.fs);
    const torn = wal.recovery.tornTail;
    expect(torn).toMatchObject({ file: `${DIR}/${log.name}`, offset: xq, bytes: TORN_RECYCLED_BYTES_MIN });
    expect(wal.lastLsn).toBe(log.d + 2);
    // A new batch lands where Q was, and everything survives a reopen.
    const next = await wal.appendDurable(payload(log.d + 3, NEW_PAYLOAD_BYTES));
    expect(next).toBe(log.d + 3);
    await wal.close();
    const after = log.fs.readFileNow(`${DIR}/${log.name}`);
    // The cut copied and zeroed one page from X (not the rest of the file); the old bytes beyond stay.
    expect(after.subarray(xq + TORN_RECYCLED_BYTES_MIN)).toEqual(before.subarray(xq + TORN_RECYCLED_BYTES_MIN));
    const copy = (await log.fs.readdir(DIR)).find((n) => n.startsWith(`${log.name}.torn`)) as string;
    expect(log.fs.readFileNow(`${DIR}/${copy}`)).toEqual(before.subarray(xq, xq + TORN_RECYCLED_BYTES_MIN));
    const reopened = await open(log.fs);
    expect(reopened.recovery.tornTail).toBeNull();
    expect(reopened.lastLsn).toBe(log.d + 3);
    await reopened.close();
  });

  it('row 5r: a torn batch over old bytes (its first record lost, its second written) is cut through the end of the records of this segment after X', async () => {
    for (const lostAs of ['old bytes', 'zeros'] as const) {
      const log = await buildRecycledLog();
      const xq = log.at(3);
      // LSN d+3 lost (old bytes, or still the zeros of the end marker batch P wrote); d+4 and the marker written.
      if (lostAs === 'old bytes') restoreStale(log, xq, NEW_RECORD_BYTES);
      else log.fs.corrupt(`${DIR}/${log.name}`, xq, new Uint8Array(NEW_RECORD_BYTES));
      const image = log.fs.readFileNow(`${DIR}/${log.name}`);
      const view = new DataView(image.buffer, image.byteOffset);
      expect(decodeRecord(image, view, log.at(4), image.byteLength, log.d + 4, recordSalt(view, log.at(0))), lostAs).toBeGreaterThan(0);
      const wal = await open(log.fs);
      expect(wal.recovery.tornTail, lostAs).toMatchObject({ offset: xq, bytes: TORN_RECYCLED_BYTES_MIN });
      expect(wal.lastLsn).toBe(log.d + 2);
      await wal.close();
      // The record of the torn batch is gone from the file: it can never pass for a later record.
      const after = log.fs.readFileNow(`${DIR}/${log.name}`);
      expect(after.subarray(xq, xq + TORN_RECYCLED_BYTES_MIN).every((b) => b === 0)).toBe(true);
      // recovery: 'strict' refuses the same disk instead of cutting it.
      const again = await buildRecycledLog();
      restoreStale(again, again.at(3), NEW_RECORD_BYTES);
      await expect(open(again.fs, 'strict')).rejects.toMatchObject({ code: 'WAL_CORRUPT', tornTail: true, offset: again.at(3) });
    }
  });

  it('a free file whose rename was lost to a power loss comes back as the segment it was, below the log start, and the log opens whole', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const wal = await Wal.open({ dir: DIR, fs: fault, segmentSizeBytes: SEGMENT_BYTES, recycleSegments: 2 });
    for (let i = 0; i < 300; i++) await wal.appendDurable(payload(i + 1, OLD_PAYLOAD_BYTES));
    expect(wal.stats().segments).toBeGreaterThanOrEqual(3);
    const gate = deferred();
    fault.inject({ op: 'syncDir', hold: gate.promise });
    const truncation = wal.truncateBefore(wal.durableLsn);
    await until(() => fault.counts.rename > 0 && fault.counts.syncDir > 0, 'the rename to a free name, then its directory sync');
    const image = mem.crash({ keepUnsynced: 'none' });
    gate.resolve();
    await truncation;
    await wal.close();
    const names = await image.readdir(DIR);
    expect(names).toContain(segmentName(1));
    expect(names.some((n) => FREE_NAME_RE.test(n))).toBe(false);
    const reopened = await open(image);
    expect(reopened.firstLsn).toBe(1);
    expect(await lsnsOf(reopened)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    await reopened.close();
  });

  it('free files found at open: reused when they have the segment size (up to recycleSegments), removed otherwise', async () => {
    const log = await buildRecycledLog();
    const free = (await log.fs.readdir(DIR)).filter((n) => FREE_NAME_RE.test(n));
    expect(free.length).toBeGreaterThan(0);
    log.fs.truncateNow(`${DIR}/${free[0] as string}`, 4096);
    const wal = await Wal.open({ dir: DIR, fs: log.fs, segmentSizeBytes: SEGMENT_BYTES, recycleSegments: 2 });
    expect(await log.fs.readdir(DIR)).not.toContain(free[0]);
    const kept = wal.stats().segmentsFree;
    await wal.close();
    expect(kept).toBe(free.length - 1);
    const none = await Wal.open({ dir: DIR, fs: log.fs, segmentSizeBytes: SEGMENT_BYTES, recycleSegments: 0 });
    expect(none.stats().segmentsFree).toBe(0);
    await none.close();
    expect((await log.fs.readdir(DIR)).filter((n) => FREE_NAME_RE.test(n))).toEqual([]);
  });
});

describe('a recycled last segment when segmentSizeBytes is raised between opens', () => {
  for (const variant of ['last', 'not last'] as const) {
    it(`never grows past its file (${variant}): a commit ending within a marker of its old end reopens clean, also 'strict'`, async () => {
      const S1 = 16384;
      const S2 = 65536;
      const fs = new MemoryFileSystem();
      let wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: S1, recycleSegments: 2 });
      const pay = (n: number, b: number): Uint8Array => new Uint8Array(n).fill(b);
      while (wal.stats().segments < 3) {
        for (let k = 0; k < 16; k++) wal.append(pay(32, 0xab));
        await wal.sync();
      }
      await wal.truncateBefore(wal.durableLsn);
      while (wal.stats().segmentsRecycled === 0) {
        wal.append(pay(100, 0xcd));
        await wal.sync();
      }
      await wal.close();
      const names = (await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();
      const lastName = names[names.length - 1] as string;
      const endOf = (): { version: number; off: number; lsn: number } => {
        const b = fs.readFileNow(`${DIR}/${lastName}`);
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        const h = decodeSegmentHeader(b);
        assert(h.ok, 'segment header');
        let off = SEGMENT_HEADER_BYTES;
        let lsn = h.firstLsn;
        for (;;) {
          const r = decodeRecord(b, v, off, b.byteLength, lsn, h.salt);
          if (r <= 0) break;
          off += r;
          lsn++;
        }
        return { version: h.version, off, lsn };
      };
      expect(endOf().version).toBe(FORMAT_VERSION_RECYCLED);
      wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: S2, recycleSegments: 2 });
      // One record that ends 16 bytes before the old end: too close for a marker inside the old size.
      wal.append(pay(S1 - 16 - endOf().off - RECORD_HEADER_BYTES, 0xee));
      await wal.sync();
      expect(endOf().off).toBe(S1 - 16);
      if (variant === 'not last') {
        wal.append(pay(60_000, 0x11));
        await wal.sync();
      }
      const lastLsn = wal.lastLsn;
      await wal.close();
      expect(fs.readFileNow(`${DIR}/${lastName}`).byteLength).toBe(S1);
      for (const recovery of ['truncate-torn-tail', 'strict'] as const) {
        const again = await Wal.open({ dir: DIR, fs, segmentSizeBytes: S2, recovery });
        expect(again.lastLsn).toBe(lastLsn);
        expect(again.stats().recovery?.tornTail ?? null).toBeNull();
        await again.close();
      }
    });
  }
});

describe('a segment whose free failed', () => {
  for (const [op, recycleSegments] of [['rename', 2], ['unlink', 0]] as const) {
    it(`(${op} fails once) blocks later truncations until reopen, so the log on disk never has a gap`, async () => {
      const mem = new MemoryFileSystem();
      const fault = new FaultFileSystem(mem);
      const o = { dir: DIR, segmentSizeBytes: 4096, recycleSegments };
      const wal = await Wal.open({ ...o, fs: fault });
      const pay = (): Uint8Array => new Uint8Array(100).fill(7);
      while (wal.stats().segments < 3) {
        for (let i = 0; i < 4; i++) wal.append(pay());
        await wal.sync();
      }
      fault.inject({ op, error: 'EIO' });
      await expect(wal.truncateBefore(wal.durableLsn)).rejects.toBeInstanceOf(FlushpointError);
      fault.clearFaults();
      while (wal.stats().segmentsCreated < 5) {
        for (let i = 0; i < 8; i++) wal.append(pay());
        await wal.sync();
      }
      await expect(wal.truncateBefore(wal.durableLsn)).rejects.toThrow(/refused until the WAL is reopened/);
      const lastLsn = wal.lastLsn;
      await wal.close();
      const again = await Wal.open({ ...o, fs: mem });
      expect(again.lastLsn).toBe(lastLsn);
      const lsns = await lsnsOf(again);
      expect(lsns[lsns.length - 1]).toBe(lastLsn);
      expect(lsns).toEqual(Array.from({ length: lsns.length }, (_, i) => (lsns[0] as number) + i));
      expect(await again.truncateBefore(again.durableLsn)).toBeGreaterThan(0); // a reopened log truncates again
      await again.close();
    });
  }
});

describe('segments grown by large commits', () => {
  it('stay recyclable: a segment the fill did not carry to full size is extended when freed, reused, and the log reads back whole after a reopen and a power loss', async () => {
    const fs = new MemoryFileSystem();
    const segmentSizeBytes = 4 * 1024 * 1024;
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes, recycleSegments: 2 });
    const big = new Uint8Array(4096 - 24).fill(5); // 4 KiB records, 64 a commit: 256 KiB commits (no fill steps)
    let lsn = 0;
    for (let commit = 0; commit < 200; commit++) {
      for (let i = 0; i < 64; i++) lsn = wal.append(big);
      await wal.waitDurable(lsn);
      if (commit % 20 === 19) await wal.truncateBefore(lsn - 200);
    }
    const stats = wal.stats();
    // 50 MiB over 4 MiB segments: without the extension, none of the segments (each ends at its last record) would be reused.
    expect(stats.segmentsRecycled, JSON.stringify({ recycled: stats.segmentsRecycled, deleted: stats.segmentsDeleted })).toBeGreaterThan(5);
    const image = fs.crash();
    let n = 0;
    for await (const r of wal.read()) n = r.lsn;
    expect(n).toBe(lsn);
    await wal.close();
    for (const disk of [fs, image]) {
      const reopened = await Wal.open({ dir: DIR, fs: disk, recycleSegments: 2 });
      expect(reopened.lastLsn).toBe(lsn);
      let first = 0;
      let count = 0;
      for await (const r of reopened.read()) {
        if (first === 0) first = r.lsn;
        expect(r.payload.byteLength).toBe(big.byteLength);
        count++;
      }
      expect(first + count - 1).toBe(lsn);
      await reopened.close();
    }
  });
});

describe('the recycleSegments option', () => {
  it('takes a count from 0 to RECYCLE_SEGMENTS_MAX: anything else is a RangeError or TypeError naming it', async () => {
    const fs = new MemoryFileSystem();
    for (const bad of [-1, 1.5, RECYCLE_SEGMENTS_MAX + 1]) {
      await expect(Wal.open({ dir: DIR, fs, recycleSegments: bad })).rejects.toThrow(RangeError);
    }
    await expect(Wal.open({ dir: DIR, fs, recycleSegments: '2' as unknown as number })).rejects.toThrow(/recycleSegments/);
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, recycleSegments: RECYCLE_SEGMENTS_MAX });
    expect(wal.stats().segmentsFree).toBe(0);
    await wal.close();
  });
});

describe('a reader whose segment is recycled under it', () => {
  it('gets WAL_TRUNCATED, never the new bytes and never WAL_CORRUPT; every record it yielded first is the one appended', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, recycleSegments: 2 });
    for (let i = 0; i < 300; i++) await wal.appendDurable(payload(i + 1, OLD_PAYLOAD_BYTES));
    // The reader opens segment 1 and reads its first span (its descriptor stays open on the file).
    const reader = wal.readRaw({ chunkBytesMax: 512 })[Symbol.asyncIterator]();
    const first = await reader.next();
    expect(first.done).toBe(false);
    // Truncation frees segment 1 (renamed to a free file), the writer reuses it and overwrites it.
    await wal.truncateBefore(wal.durableLsn);
    expect(wal.firstLsn).toBeGreaterThan(1);
    const recycledBefore = wal.stats().segmentsRecycled;
    while (wal.stats().segmentsRecycled < recycledBefore + 2) await wal.appendDurable(payload(0, 2000));
    let err: unknown = null;
    let lsn = first.value?.lastLsn as number;
    try {
      for (;;) {
        const next = await reader.next();
        if (next.done) break;
        expect(next.value.firstLsn).toBe(lsn + 1);
        // Every record yielded is the one appended under its LSN (old salt, old payload).
        const view = new DataView(next.value.bytes.buffer, next.value.bytes.byteOffset, next.value.bytes.byteLength);
        for (let at = 0; at < next.value.bytes.byteLength; ) {
          expect(recordLsn(view, at)).toBe(++lsn);
          expect(next.value.bytes[at + RECORD_HEADER_BYTES]).toBe(lsn & 0xff);
          at += recordBytes(OLD_PAYLOAD_BYTES);
        }
      }
    } catch (e) {
      err = e;
    }
    expect(isFlushpointError(err, 'WAL_TRUNCATED'), `expected WAL_TRUNCATED, got ${String(err)}`).toBe(true);
    expect((err as FlushpointError).message).toMatch(/0000000000000001\.wal/);
    await wal.close();
  });
});
