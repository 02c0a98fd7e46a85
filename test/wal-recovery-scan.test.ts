/**
 * The recovery scan across its read chunks (wal/recovery.ts FileWindow): the scan reads a segment in 4
 * MiB chunks and reads the next chunk ahead while it checks the current one, carrying a record that
 * straddles two chunks over when it is short (<= 64 KiB) and reading again the plain way when it is not.
 * Segments here hold ~11 MiB, so every path runs: short and long records across chunk ends, a torn
 * tail and damage to an acknowledged batch lying past the first chunk.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { isFlushpointError } from '../core/errors.js';
import { seededRandom } from '../core/random.js';
import { patternBytes } from './helpers/payload.js';
import { ExpectedLog, verifyLog } from './helpers/wal-log.js';
import { SEGMENT_HEADER_BYTES } from '../wal/format.js';
import { recordBytes } from '../record/format.js';

const DIR = '/data/wal';
const SEGMENT_BYTES = 16 * 1024 * 1024;
const SEGMENT = `${DIR}/0000000000000001.wal`;
const MiB = 1024 * 1024;

/** Appends records of mixed sizes (mostly small, some of 100-300 KiB, a few of 1-2 MiB) in batches until `totalBytes`. */
async function fill(wal: Wal, log: ExpectedLog, totalBytes: number, seed: number): Promise<{ offsets: number[] }> {
  const rnd = seededRandom(seed);
  const offsets: number[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < totalBytes) {
    const batch = 1 + rnd.int(64);
    for (let i = 0; i < batch; i++) {
      const pick = rnd.int(100);
      const size = pick < 90 ? rnd.int(300) : pick < 98 ? 100_000 + rnd.int(200_000) : MiB + rnd.int(MiB);
      const lsn = wal.lastLsn + 1;
      const payload = patternBytes(lsn * 31 + seed, size);
      expect(wal.append(payload)).toBe(lsn);
      log.set(lsn, payload);
      offsets.push(offset);
      offset += recordBytes(size);
    }
    await wal.sync();
  }
  return { offsets };
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
      const { offsets } = await fill(wal, log, 11 * MiB, seed);
      await wal.close();
      // Records that straddle the 4 MiB and 8 MiB chunk ends exist (short or long, depending on the seed).
      expect(offsets.some((o, i) => i + 1 < offsets.length && o < 4 * MiB && (offsets[i + 1] as number) > 4 * MiB)).toBe(true);
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
    const { offsets } = await fill(wal, log, 9 * MiB, 4);
    // One more batch: its last record is the one torn below.
    const tornLsn = wal.lastLsn + 3;
    for (let i = 0; i < 3; i++) {
      const payload = patternBytes(wal.lastLsn + 1, 200);
      log.set(wal.append(payload), payload);
    }
    await wal.sync();
    await wal.close();
    const tornOffset = offsets[offsets.length - 1] as number;
    expect(tornOffset).toBeGreaterThan(8 * MiB);
    // Flip a payload byte of the last record (LSN tornLsn), which starts 2 records after the last offset.
    const h = await mem.open(SEGMENT, 'r+');
    const lastOffset = tornOffset + recordBytes((log.get(tornLsn - 3) as Uint8Array).byteLength) + recordBytes(200) * 2;
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
    const { offsets } = await fill(wal, log, 10 * MiB, 5);
    await wal.close();
    const i = offsets.findIndex((o) => o > 6 * MiB);
    const damaged = offsets[i] as number;
    const h = await mem.open(SEGMENT, 'r+');
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
