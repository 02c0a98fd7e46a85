/**
 * The recovery scan across its read chunks (wal/recovery.ts FileWindow): the scan reads a segment in 4
 * MiB chunks and reads the next chunk ahead while it checks the current one, carrying a record that
 * straddles two chunks over when it is short (<= 64 KiB) and reading again the plain way when it is not.
 * Segments here hold ~11 MiB (the last one; a new log's first segment hands over early), so every path runs: short and long records across chunk ends, a torn
 * tail and damage to an acknowledged batch lying past the first chunk.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { isFlushpointError } from '../core/errors.js';
import { seededRandom } from '../core/random.js';
import { patternBytes } from './helpers/payload.js';
import { ExpectedLog, verifyLog } from './helpers/wal-log.js';
import { SEGMENT_HEADER_BYTES, parseSegmentName } from '../wal/format.js';
import { recordBytes } from '../record/format.js';

const DIR = '/data/wal';
const SEGMENT_BYTES = 16 * 1024 * 1024;
const MiB = 1024 * 1024;

/**
 * Appends records of mixed sizes (mostly small, some of 100-300 KiB, a few of 1-2 MiB) in batches until
 * the segment being written holds about `totalBytes` (the count starts over when a new segment starts:
 * a new log's first segment hands over to its filled next file a few MiB in).
 */
async function fill(wal: Wal, log: ExpectedLog, totalBytes: number, seed: number): Promise<void> {
  const rnd = seededRandom(seed);
  let offset = SEGMENT_HEADER_BYTES;
  let segments = wal.stats().segments;
  while (offset < totalBytes) {
    const batch = 1 + rnd.int(64);
    let batchBytes = 0;
    for (let i = 0; i < batch; i++) {
      const pick = rnd.int(100);
      const size = pick < 90 ? rnd.int(300) : pick < 98 ? 100_000 + rnd.int(200_000) : MiB + rnd.int(MiB);
      const lsn = wal.lastLsn + 1;
      const payload = patternBytes(lsn * 31 + seed, size);
      expect(wal.append(payload)).toBe(lsn);
      log.set(lsn, payload);
      batchBytes += recordBytes(size);
    }
    await wal.sync();
    offset += batchBytes;
    if (wal.stats().segments !== segments) {
      segments = wal.stats().segments;
      offset = SEGMENT_HEADER_BYTES + batchBytes; // at most this batch is in the new segment
    }
  }
}

/**
 * The log's last segment (a new log's first one hands over to its filled next file a few MiB in: the
 * records that matter here are in the last) and the byte offset of record `lsn` in it.
 */
async function lastSegment(mem: MemoryFileSystem, log: ExpectedLog): Promise<{ path: string; firstLsn: number; offsetOf: (lsn: number) => number }> {
  const name = (await mem.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort().at(-1) as string;
  const firstLsn = parseSegmentName(name) as number;
  const offsetOf = (lsn: number): number => {
    let offset = SEGMENT_HEADER_BYTES;
    for (let k = firstLsn; k < lsn; k++) offset += recordBytes((log.get(k) as Uint8Array).byteLength);
    return offset;
  };
  return { path: `${DIR}/${name}`, firstLsn, offsetOf };
}

async function openOn(fs: FaultFileSystem | MemoryFileSystem): Promise<Wal> {
  return Wal.open({ dir: DIR, fs, segmentSizeBytes: SEGMENT_BYTES, syncMode: 'inline' });
}

describe('recovery scan across read chunks', () => {
  for (const seed of [1, 2, 3]) {
    it(`reads back every record of an ~11 MiB segment, records straddling chunk ends included (seed ${seed})`, async () => {
      const mem = new MemoryFileSystem();
      const log = new ExpectedLog();
      const wal = await openOn(mem);
      await fill(wal, log, 11 * MiB, seed);
      await wal.close();
      // The last segment holds more than two chunks, and a record straddles its 4 MiB chunk end (short or long, depending on the seed).
      const segment = await lastSegment(mem, log);
      expect(segment.offsetOf(log.lastLsn + 1)).toBeGreaterThan(8 * MiB);
      let lsn = segment.firstLsn;
      while (segment.offsetOf(lsn + 1) <= 4 * MiB) lsn++;
      expect(segment.offsetOf(lsn)).toBeLessThan(4 * MiB);
      const fault = new FaultFileSystem(mem);
      const again = await openOn(fault);
      expect(fault.counts.read, 'the segment was read in several chunks').toBeGreaterThanOrEqual(3);
      expect(again.recovery.tornTail).toBeNull();
      await verifyLog(again, (lsn) => log.get(lsn), { mustSurviveLsn: log.lastLsn, lastAppendedLsn: log.lastLsn });
      await again.close();
    });
  }

  it('cuts a torn tail that lies past the first chunk, and keeps everything before it', async () => {
    const mem = new MemoryFileSystem();
    const log = new ExpectedLog();
    const wal = await openOn(mem);
    await fill(wal, log, 9 * MiB, 4);
    // One more batch: its last record is the one torn below.
    const tornLsn = wal.lastLsn + 3;
    for (let i = 0; i < 3; i++) {
      const payload = patternBytes(wal.lastLsn + 1, 200);
      log.set(wal.append(payload), payload);
    }
    await wal.sync();
    await wal.close();
    const segment = await lastSegment(mem, log);
    // Flip a payload byte of the last record (LSN tornLsn).
    const lastOffset = segment.offsetOf(tornLsn);
    expect(lastOffset).toBeGreaterThan(8 * MiB);
    const h = await mem.open(segment.path, 'r+');
    await h.writev([new Uint8Array([0xff])], lastOffset + 40);
    await h.datasync();
    await h.close();
    const again = await openOn(mem);
    expect(again.recovery.tornTail?.offset).toBe(lastOffset);
    expect(again.lastLsn).toBe(tornLsn - 1);
    log.truncateAfter(tornLsn - 1);
    await verifyLog(again, (lsn) => log.get(lsn), { mustSurviveLsn: tornLsn - 1, lastAppendedLsn: tornLsn - 1 });
    await again.close();
  });

  it('refuses damage to an acknowledged batch past the first chunk (WAL_CORRUPT naming its offset)', async () => {
    const mem = new MemoryFileSystem();
    const log = new ExpectedLog();
    const wal = await openOn(mem);
    await fill(wal, log, 10 * MiB, 5);
    await wal.close();
    const segment = await lastSegment(mem, log);
    let lsn = segment.firstLsn;
    while (segment.offsetOf(lsn) <= 6 * MiB) lsn++;
    expect(lsn).toBeLessThan(log.lastLsn); // an acknowledged batch follows it
    const damaged = segment.offsetOf(lsn);
    const h = await mem.open(segment.path, 'r+');
    await h.writev([new Uint8Array([0xff, 0xfe])], damaged + 26);
    await h.datasync();
    await h.close();
    const err = await openOn(mem).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isFlushpointError(err, 'WAL_CORRUPT'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`at byte offset ${damaged}`);
  });
});
