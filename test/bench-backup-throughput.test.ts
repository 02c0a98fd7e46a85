/**
 * Section 6's "backup throughput while the WAL takes load": the backup's bytes and the WAL's must come
 * from the same run and count the same bytes. The line once took the maximum of each over all runs
 * (a figure and its baseline from different runs) and the WAL's payload bytes against the backup's
 * framed ones, which read 1.19x at 128 B with the backup exactly keeping up.
 */
import { describe, expect, it } from 'vitest';
import { pairedThroughput } from '../bench/backup-runner.js';
import { recordBytes } from '../record/format.js';

describe('pairedThroughput', () => {
  it('a backup that holds exactly the log the WAL wrote reads 1.00x, at every record size', () => {
    for (const size of [1, 128, 4096]) {
      const records = 10_000;
      const t = pairedThroughput([{ backupBytes: records * recordBytes(size), walRecords: records, seconds: 2 }], size);
      expect(t.backupMBPerSec / t.walLogMBPerSec).toBeCloseTo(1, 12);
      expect(t.walLogMBPerSec).toBeCloseTo((records * recordBytes(size)) / 2 / 1e6, 9);
    }
  });

  it('both figures come from one run: the run of median backup throughput', () => {
    const f = recordBytes(128);
    const runs = [
      { backupBytes: 30e6, walRecords: (10e6 / f) * 3, seconds: 1 }, // backup 30 MB/s, WAL 30 MB/s
      { backupBytes: 20e6, walRecords: (50e6 / f) * 1, seconds: 1 }, // backup 20 MB/s, WAL 50 MB/s: the median by backup
      { backupBytes: 10e6, walRecords: (40e6 / f) * 1, seconds: 1 }, // backup 10 MB/s, WAL 40 MB/s
    ];
    const t = pairedThroughput(runs, 128);
    expect(t.backupMBPerSec).toBeCloseTo(20, 9);
    expect(t.walLogMBPerSec).toBeCloseTo(50, 9);
    // Not the maxima of each (30 and 50 MB/s, from different runs).
    expect(t.backupMBPerSec / t.walLogMBPerSec).toBeCloseTo(0.4, 9);
  });

  it('no run measured: zeros, not NaN', () => {
    expect(pairedThroughput([], 128)).toEqual({ backupMBPerSec: 0, walLogMBPerSec: 0 });
    expect(pairedThroughput([{ backupBytes: 5, walRecords: 5, seconds: 0 }], 128)).toEqual({ backupMBPerSec: 0, walLogMBPerSec: 0 });
  });
});
