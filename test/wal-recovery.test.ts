/**
 * Recovery against damage: every truncation offset inside the last record of the last segment, and
 * every single-byte flip across a small multi-segment log. Each case must end in one of two ways:
 * WAL_CORRUPT naming the damaged file and an offset at or before the damage, or a log that is an exact
 * prefix of what was written, shorter only by a torn tail cut from the last segment's last batch.
 * Never a wrong payload, never a silently missing record before the tail.
 */
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FlushpointError } from '../core/errors.js';
import { SEGMENT_HEADER_BYTES, parseSegmentName } from '../wal/format.js';
import { SALT_ANY, decodeRecord } from '../record/format.js';
import { buildMemoryWal, equalBytes, readAll } from './helpers/wal-fixtures.js';
import type { MemoryFileSystem } from '../fs/memory-file-system.js';

const SEGMENT = 1024;
// Lengths chosen so records straddle 8-byte padding and the log rolls into three segments.
const LENGTHS = [0, 1, 7, 8, 9, 100, 31, 200, 5, 64, 300, 17, 120, 250, 3, 90, 400, 12, 33, 128];

async function segmentsOf(fs: MemoryFileSystem, dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => parseSegmentName(n) !== null).sort();
}

/** Start offsets of the records in a segment image. */
function recordOffsets(bytes: Uint8Array): Array<{ offset: number; size: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Array<{ offset: number; size: number }> = [];
  let offset = SEGMENT_HEADER_BYTES;
  for (;;) {
    const size = decodeRecord(bytes, view, offset, bytes.byteLength, 0, SALT_ANY);
    if (size <= 0) break;
    out.push({ offset, size });
    offset += size;
  }
  return out;
}

/** The last segment, its bytes, and where its last record is. */
async function lastRecordOf(fs: MemoryFileSystem, dir: string): Promise<{ last: string; image: Uint8Array; lastRec: { offset: number; size: number } }> {
  const names = await segmentsOf(fs, dir);
  const last = names[names.length - 1] as string;
  const image = fs.readFileNow(`${dir}/${last}`);
  const recs = recordOffsets(image);
  return { last, image, lastRec: recs[recs.length - 1] as { offset: number; size: number } };
}

async function checkOutcome(
  fs: MemoryFileSystem,
  dir: string,
  payloads: Uint8Array[],
  damaged: { file: string; position: number; isLastSegment: boolean; lastBatchFirstLsn: number },
  strict = false,
): Promise<'corrupt' | 'torn' | 'intact'> {
  let wal: Wal;
  try {
    wal = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT, recovery: strict ? 'strict' : 'truncate-torn-tail' });
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(FlushpointError);
    const e = err as FlushpointError;
    expect(e.code).toBe('WAL_CORRUPT');
    expect(e.file).toBe(`${dir}/${damaged.file}`);
    expect(e.offset).toBeTypeOf('number');
    expect(e.offset as number).toBeLessThanOrEqual(damaged.position);
    expect(e.message).toContain(damaged.file);
    expect(e.message).toContain(String(e.offset));
    return 'corrupt';
  }
  try {
    const records = await readAll(wal);
    const total = payloads.length - 1;
    expect(records.length).toBe(wal.lastLsn);
    for (const r of records) {
      const want = payloads[r.lsn] as Uint8Array;
      if (!equalBytes(r.payload, want)) throw new Error(`LSN ${r.lsn} came back with different bytes (damage at ${damaged.file}:${damaged.position})`);
    }
    if (wal.lastLsn < total) {
      // Only a torn tail may be cut, and only from the last segment's last batch.
      expect(damaged.isLastSegment).toBe(true);
      expect(wal.recovery.tornTail).not.toBeNull();
      expect(wal.lastLsn + 1).toBeGreaterThanOrEqual(damaged.lastBatchFirstLsn);
      // It accepts writes after the repair, and they survive a reopen.
      const lsn = wal.append(new Uint8Array([1, 2, 3]));
      await wal.waitDurable(lsn);
      await wal.close();
      const again = await Wal.open({ dir, fs, segmentSizeBytes: SEGMENT });
      expect(again.lastLsn).toBe(lsn);
      const back = await readAll(again);
      expect(Array.from(back[back.length - 1]?.payload ?? [])).toEqual([1, 2, 3]);
      await again.close();
      return 'torn';
    }
    expect(wal.lastLsn).toBe(total);
    return 'intact';
  } finally {
    await wal.close();
  }
}

describe('WAL recovery', () => {
  it('builds a three-segment log for the damage tests', async () => {
    const { fs, dir } = await buildMemoryWal(LENGTHS, { segmentSizeBytes: SEGMENT });
    expect((await segmentsOf(fs, dir)).length).toBe(3);
  });

  it('cuts a torn tail at every truncation offset inside the last record of the last segment', async () => {
    const { fs, dir, payloads } = await buildMemoryWal(LENGTHS, { segmentSizeBytes: SEGMENT });
    const { last, image, lastRec } = await lastRecordOf(fs, dir);
    let cases = 0;
    for (let cut = lastRec.offset + 1; cut < lastRec.offset + lastRec.size; cut++) {
      const copy = fs.crash();
      copy.truncateNow(`${dir}/${last}`, cut);
      const outcome = await checkOutcome(copy, dir, payloads, { file: last, position: cut, isLastSegment: true, lastBatchFirstLsn: payloads.length - 1 });
      expect(outcome, `truncated at ${cut}`).toBe('torn');
      // strict refuses the same tail with WAL_CORRUPT, tornTail: true
      const copy2 = fs.crash();
      copy2.truncateNow(`${dir}/${last}`, cut);
      const err = await Wal.open({ dir, fs: copy2, segmentSizeBytes: SEGMENT, recovery: 'strict' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'WAL_CORRUPT', tornTail: true, file: `${dir}/${last}`, offset: lastRec.offset });
      cases++;
    }
    expect(cases).toBe(lastRec.size - 1);
    // Truncating exactly at the record's start removes it cleanly: no repair needed.
    const copy = fs.crash();
    copy.truncateNow(`${dir}/${last}`, lastRec.offset);
    const wal = await Wal.open({ dir, fs: copy, segmentSizeBytes: SEGMENT });
    expect(wal.lastLsn).toBe(payloads.length - 2);
    expect(wal.recovery.tornTail).toBeNull();
    await wal.close();
  });

  it('detects every single-byte flip across the log: corrupt with file and offset, or an exact prefix', async () => {
    const { fs, dir, payloads } = await buildMemoryWal(LENGTHS, { segmentSizeBytes: SEGMENT });
    const names = await segmentsOf(fs, dir);
    const tally = { corrupt: 0, torn: 0, intact: 0 };
    for (const [i, name] of names.entries()) {
      const isLast = i === names.length - 1;
      const image = fs.readFileNow(`${dir}/${name}`);
      const recs = recordOffsets(image);
      const end = (recs[recs.length - 1]?.offset ?? 0) + (recs[recs.length - 1]?.size ?? 0);
      // Every byte of written data, plus a stretch of the zero tail after it.
      for (let pos = 0; pos < Math.min(image.byteLength, end + 64); pos++) {
        const copy = fs.crash();
        copy.corrupt(`${dir}/${name}`, pos, new Uint8Array([(image[pos] as number) ^ 0x5a]));
        const outcome = await checkOutcome(copy, dir, payloads, { file: name, position: pos, isLastSegment: isLast, lastBatchFirstLsn: payloads.length - 1 });
        tally[outcome]++;
        if (!isLast || pos < (recs[recs.length - 1]?.offset ?? 0)) {
          // Damage before the last record of the last segment is always corruption.
          if (pos < end) expect(outcome, `${name}:${pos}`).toBe('corrupt');
        }
      }
    }
    expect(tally.corrupt).toBeGreaterThan(1000);
    expect(tally.torn).toBeGreaterThan(0);
  });

  it('reports an LSN gap between segments as WAL_CORRUPT naming the later segment', async () => {
    const { fs, dir } = await buildMemoryWal(LENGTHS, { segmentSizeBytes: SEGMENT });
    const names = await segmentsOf(fs, dir);
    const copy = fs.crash();
    await copy.unlink(`${dir}/${names[1]}`);
    const err = (await Wal.open({ dir, fs: copy, segmentSizeBytes: SEGMENT }).catch((e: unknown) => e)) as FlushpointError;
    expect(err.code).toBe('WAL_CORRUPT');
    expect(err.file).toBe(`${dir}/${names[2]}`);
    expect(err.message).toMatch(/LSN gap/);
  });

  it('keeps a copy of the bytes it cuts beside the segment', async () => {
    const { fs, dir, payloads } = await buildMemoryWal(LENGTHS, { segmentSizeBytes: SEGMENT });
    const { last, image, lastRec } = await lastRecordOf(fs, dir);
    const copy = fs.crash();
    copy.truncateNow(`${dir}/${last}`, lastRec.offset + 10);
    const wal = await Wal.open({ dir, fs: copy, segmentSizeBytes: SEGMENT });
    expect(wal.lastLsn).toBe(payloads.length - 2);
    expect(wal.recovery.tornTail).toMatchObject({ file: `${dir}/${last}`, offset: lastRec.offset });
    await wal.close();
    const kept = copy.readFileNow(`${dir}/${last}.torn`);
    expect(equalBytes(kept, image.subarray(lastRec.offset, lastRec.offset + kept.byteLength))).toBe(true);
    expect(kept.byteLength).toBeGreaterThan(0);
  });
});
