/**
 * Section 5, recovery: how long Wal.open takes on a WAL of a given size, which is the time a restart
 * spends before the first write. The WAL is filled with appends (synced in large batches), closed, and
 * opened again several times; the median open is reported. Every open must find every record: a
 * recovery that is fast because it stopped early is a bug, not a figure.
 *
 * The page cache is warm (the WAL was just written), as after a process restart; after a machine
 * restart the first open also reads from the device. The baseline is a plain sequential read of the
 * same segment files (1 MiB readSync calls), interleaved with the opens.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Wal } from '../wal/index.js';
import { recordBytes } from '../record/format.js';
import { nowUs } from './latency.js';
import type { BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';

/** Appends between two syncs while filling: big batches, so the fill is quick. */
const fillBatchRecordsCount = 4096;

export interface RecoveryResult {
  /** Target size of the WAL (records with their framing). */
  walSizeBytes: number;
  /** What the fill really appended: records with their framing. */
  dataBytes: number;
  recordSizeBytes: number;
  recordsCount: number;
  segmentsCount: number;
  /** What the WAL reports it scanned on the last open (preallocated space included). */
  bytesScanned: number;
  /** Median wall time of Wal.open, and every open measured. */
  openMs: number;
  opensMs: number[];
  /** The WAL's own timing of its scan (recovery.durationMs) on the open that took the median time. */
  scanMs: number;
  /** dataBytes / openMs, in MB/s (10^6 bytes): how fast a restart gets through the log. */
  mbPerSec: number;
  /** Median rate of reading every file of the WAL directory sequentially, in MB/s. */
  rawReadMbPerSec: number;
}

const readChunkBytes = 1024 * 1024;

/** Reads every file in `dir` front to back; returns MB/s. */
function readAllMbPerSec(dir: string): number {
  const chunk = Buffer.allocUnsafe(readChunkBytes);
  let bytes = 0;
  const t0 = nowUs();
  for (const name of fs.readdirSync(dir).sort()) {
    const filePath = path.join(dir, name);
    if (!fs.statSync(filePath).isFile()) continue;
    const fd = fs.openSync(filePath, 'r');
    try {
      let n: number;
      while ((n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0) bytes += n;
    } finally {
      fs.closeSync(fd);
    }
  }
  return bytes / 1e6 / ((nowUs() - t0) / 1e6);
}

export function recoveryStepsCount(profile: BenchProfile): number {
  return Math.max(1, profile.recoverySizesBytes.length * profile.recoveryRecordSizesBytes.length);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function fill(walDir: string, walSizeBytes: number, recordSizeBytes: number, profile: BenchProfile, progress: Progress): Promise<{ lastLsn: number; dataBytes: number }> {
  const payload = crypto.randomBytes(recordSizeBytes);
  const wal = await Wal.open({ dir: walDir, segmentSizeBytes: profile.walSegmentSizeBytes });
  try {
    // Log bytes: records as framed on disk (header and payload, 8-aligned), not payload bytes alone
    // (which made the MB/s 16% low at 128 B, and the "64 MiB" log 76 MiB long).
    const framedBytes = recordBytes(recordSizeBytes);
    while (wal.lastLsn * framedBytes < walSizeBytes) {
      for (let i = 0; i < fillBatchRecordsCount; i++) wal.append(payload);
      await wal.sync();
      progress.advance((0.5 * wal.lastLsn * framedBytes) / walSizeBytes);
    }
    return { lastLsn: wal.lastLsn, dataBytes: wal.lastLsn * framedBytes };
  } finally {
    await wal.close();
  }
}

export async function measureRecovery(dir: string, profile: BenchProfile, progress: Progress): Promise<RecoveryResult[]> {
  const results: RecoveryResult[] = [];
  for (const walSizeBytes of profile.recoverySizesBytes) {
    for (const recordSizeBytes of profile.recoveryRecordSizesBytes) {
      progress.step(`${(walSizeBytes / 2 ** 20).toFixed(0)} MiB of ${recordSizeBytes} B records`);
      const walDir = path.join(dir, `recovery-${walSizeBytes}-${recordSizeBytes}`);
      try {
        const { lastLsn, dataBytes } = await fill(walDir, walSizeBytes, recordSizeBytes, profile, progress);
        const opens: { openMs: number; scanMs: number }[] = [];
        const rawReadsMbPerSec: number[] = [];
        let bytesScanned = 0;
        let segmentsCount = 0;
        for (let i = 0; i < profile.recoveryOpensCount; i++) {
          rawReadsMbPerSec.push(readAllMbPerSec(walDir));
          const t0 = nowUs();
          const wal = await Wal.open({ dir: walDir, segmentSizeBytes: profile.walSegmentSizeBytes });
          const t1 = nowUs();
          try {
            if (wal.lastLsn !== lastLsn) throw new Error(`recovery of ${walDir} found LSN ${wal.lastLsn}, expected ${lastLsn}`);
            bytesScanned = wal.recovery.bytesScanned;
            segmentsCount = wal.recovery.segments;
            opens.push({ openMs: (t1 - t0) / 1000, scanMs: wal.recovery.durationMs });
          } finally {
            await wal.close();
          }
          progress.advance(0.5 + (0.5 * (i + 1)) / profile.recoveryOpensCount);
        }
        const medianOpen = [...opens].sort((a, b) => a.openMs - b.openMs)[Math.floor((opens.length - 1) / 2)]!;
        results.push({
          walSizeBytes,
          dataBytes,
          recordSizeBytes,
          recordsCount: lastLsn,
          segmentsCount,
          bytesScanned,
          openMs: medianOpen.openMs,
          opensMs: opens.map((o) => o.openMs),
          scanMs: medianOpen.scanMs,
          mbPerSec: dataBytes / 1e6 / (medianOpen.openMs / 1000),
          rawReadMbPerSec: median(rawReadsMbPerSec),
        });
      } finally {
        fs.rmSync(walDir, { recursive: true, force: true });
      }
    }
  }
  return results;
}
