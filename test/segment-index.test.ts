import { describe, expect, it } from 'vitest';
import { INDEX_SPACING_BYTES, SegmentIndex } from '../wal/segment-index.js';
import { Wal } from '../wal/wal.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { FaultFileSystem } from '../fs/fault-file-system.js';
import { payloadFor } from './helpers/wal-fixtures.js';

describe('SegmentIndex', () => {
  it('keeps sparse record starts and seeks to the last one at or before an LSN', () => {
    const index = new SegmentIndex(10);
    expect(index.seek(10)).toEqual({ lsn: 10, offset: 32 });
    index.add(11, 100); // too close: not kept
    index.add(500, 32 + INDEX_SPACING_BYTES);
    index.add(900, 32 + 2 * INDEX_SPACING_BYTES + 8);
    expect(index.entriesCount).toBe(3);
    expect(index.seek(499)).toEqual({ lsn: 10, offset: 32 });
    expect(index.seek(500)).toEqual({ lsn: 500, offset: 32 + INDEX_SPACING_BYTES });
    expect(index.seek(10_000)).toEqual({ lsn: 900, offset: 32 + 2 * INDEX_SPACING_BYTES + 8 });
    expect(() => index.add(800, 1_000_000)).toThrow(/in order/);
  });

  it('a read from the middle of a large segment reads a bounded part of it, before and after reopen', async () => {
    const mem = new MemoryFileSystem();
    const fs = new FaultFileSystem(mem);
    const wal = await Wal.open({ dir: '/w', fs, segmentSizeBytes: 8 * 1024 * 1024 });
    for (let i = 1; i <= 20_000; i++) {
      wal.append(payloadFor(i, 200));
      if (i % 500 === 0) await wal.sync();
    }
    await wal.sync();
    const readBytes = async (w: Wal, from: number): Promise<number> => {
      let bytes = 0;
      let first = 0;
      for await (const span of w.readRaw({ fromLsn: from, toLsn: from + 9 })) {
        first ||= span.firstLsn;
        bytes += span.bytes.byteLength;
      }
      expect(first).toBe(from);
      return bytes;
    };
    fs.resetCounts();
    expect(await readBytes(wal, 19_990)).toBe(10 * 224);
    // One read of at most a chunk, starting near the wanted record: not the 4+ MiB before it.
    expect(fs.counts.read).toBeLessThanOrEqual(3);
    await wal.close();
    const again = await Wal.open({ dir: '/w', fs, segmentSizeBytes: 8 * 1024 * 1024 });
    fs.resetCounts();
    const batches: number[] = [];
    for await (const batch of again.readBatches({ fromLsn: 15_000, toLsn: 15_002 })) batches.push(...batch.map((r) => r.lsn));
    expect(batches).toEqual([15_000, 15_001, 15_002]);
    expect(fs.counts.read).toBeLessThanOrEqual(3);
    await again.close();
  });
});
