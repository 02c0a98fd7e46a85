/**
 * Section 3, the WAL: durable appends per second under closed-loop writers, each doing
 * `const lsn = wal.append(payload); await wal.waitDurable(lsn)` in a loop. A fresh WAL per measurement,
 * so no run inherits another's segments. Syncs per record come from the WAL's own counters, read as
 * the window opens and closes: under load it must be far below 1 (group commit at work).
 *
 * Each row carries two baselines of its own besides the raw ceiling (section 2): the device's 4 KiB
 * overwrite + fdatasync, measured in slices right before and right after the row (a noisy machine
 * drifts within a run), and the acknowledgement ceiling of the harness for that writer count.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Wal } from '../wal/index.js';
import { runClosedLoop, type ClosedLoopResult } from './closed-loop.js';
import { openOverwriteLoop } from './device-latency.js';
import { measureLoopCeiling, type LoopCeilingResult } from './loop-ceiling.js';
import { writersCountsFor, type BenchProfile } from './profile.js';
import type { Progress } from './progress.js';

export interface WalMeasurement extends ClosedLoopResult {
  recordSizeBytes: number;
  /** WAL commits (writev + fdatasync) per record appended, inside the window. */
  syncsPerRecord: number;
  /** Bytes each commit wrote, on average, inside the window (records with their framing). */
  bytesPerSync: number;
  /** Times a batch waited for the next preallocated segment, over the whole run. */
  preallocStalls: number;
  /** The device's 4 KiB overwrite + fdatasync, measured right before and after this row. */
  pairedDevice: { opsPerSec: number; p50Us: number; p99Us: number };
  /** Acknowledgements per second of the harness with a store that does no I/O, same writer count. */
  loopCeilingOpsPerSec: number;
}

/** Size of the file the paired device slices overwrite (they wrap around in it). */
const pairedDeviceFileSizeBytesMax = 8 * 1024 * 1024;

interface Counters {
  appends: number;
  syncs: number;
  syncedBytes: number;
}

function countersOf(wal: Wal): Counters {
  const { appends, syncs, syncedBytes } = wal.stats();
  return { appends, syncs, syncedBytes };
}

export function walStepsCount(profile: BenchProfile): number {
  return Math.max(1, profile.recordSizesBytes.reduce((sum, size) => sum + writersCountsFor(profile.walWritersCounts, size).length, 0));
}

export async function measureWal(dir: string, profile: BenchProfile, progress: Progress): Promise<WalMeasurement[]> {
  const results: WalMeasurement[] = [];
  const ceilings = new Map<number, LoopCeilingResult>();
  const device = openOverwriteLoop(path.join(dir, 'paired-device.dat'), Math.min(profile.preallocatedFileSizeBytes, pairedDeviceFileSizeBytesMax));
  const deviceSliceUs = (profile.pairedDeviceSliceMs * 1000) / 2;
  try {
    for (const recordSizeBytes of profile.recordSizesBytes) {
      const payload = crypto.randomBytes(recordSizeBytes);
      for (const writersCount of writersCountsFor(profile.walWritersCounts, recordSizeBytes)) {
        progress.step(`${recordSizeBytes} B x ${writersCount} writers`);
        let ceiling = ceilings.get(writersCount);
        if (ceiling === undefined) {
          ceiling = await measureLoopCeiling(writersCount, profile.warmupMs / 2, profile.loopCeilingWindowMs);
          ceilings.set(writersCount, ceiling);
        }
        device.loop.reset();
        device.loop.runFor(deviceSliceUs);
        const measured = await measureOne(path.join(dir, `wal-${recordSizeBytes}-${writersCount}`), payload, writersCount, profile, progress);
        device.loop.runFor(deviceSliceUs);
        const paired = device.loop.result();
        results.push({
          recordSizeBytes,
          ...measured,
          pairedDevice: { opsPerSec: paired.opsPerSec, p50Us: paired.latency.p50Us, p99Us: paired.latency.p99Us },
          loopCeilingOpsPerSec: ceiling.opsPerSec,
        });
      }
    }
  } finally {
    device.close();
  }
  return results;
}

type WalOnly = Omit<WalMeasurement, 'recordSizeBytes' | 'pairedDevice' | 'loopCeilingOpsPerSec'>;

async function measureOne(walDir: string, payload: Buffer, writersCount: number, profile: BenchProfile, progress: Progress): Promise<WalOnly> {
  const wal = await Wal.open({ dir: walDir, segmentSizeBytes: profile.walSegmentSizeBytes });
  try {
    let atStart: Counters = countersOf(wal);
    let atEnd: Counters = atStart;
    const measured = await runClosedLoop({
      writersCount,
      warmupMs: profile.warmupMs,
      windowMs: profile.windowMs,
      write: () => wal.waitDurable(wal.append(payload)),
      onWindowStart: () => (atStart = countersOf(wal)),
      onWindowEnd: () => (atEnd = countersOf(wal)),
      onTick: (fraction) => progress.advance(fraction),
    });
    const appends = atEnd.appends - atStart.appends;
    const syncs = atEnd.syncs - atStart.syncs;
    return {
      ...measured,
      syncsPerRecord: appends === 0 ? Number.NaN : syncs / appends,
      bytesPerSync: syncs === 0 ? Number.NaN : (atEnd.syncedBytes - atStart.syncedBytes) / syncs,
      preallocStalls: wal.stats().preallocStalls,
    };
  } finally {
    await wal.close();
    fs.rmSync(walDir, { recursive: true, force: true });
  }
}
