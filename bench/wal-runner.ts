/**
 * Section 3, the WAL: durable appends per second under closed-loop writers, each doing
 * `const lsn = wal.append(payload); await wal.waitDurable(lsn)` in a loop. A fresh WAL per measurement,
 * so no run inherits another's segments. Syncs per record come from the WAL's own counters, read as
 * the window opens and closes: under load it must be far below 1 (group commit at work).
 */
import fs from 'node:fs';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Wal, type SyncMode } from '../wal/index.js';
import { runClosedLoop, type ClosedLoopResult } from './closed-loop.js';
import type { PairedBaseline } from './paired-baselines.js';
import type { BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';

export interface WalRowMeasurement extends ClosedLoopResult {
  /** WAL commits (writev + fdatasync) per record appended, inside the window. */
  syncsPerRecord: number;
  /** Bytes each commit wrote, on average, inside the window (records with their framing). */
  bytesPerSync: number;
  /** Segments started unprepared (the zero-fill of the next one was not done in time), over the whole run. */
  preallocStalls: number;
  /**
   * Where the loop's time goes: event-loop busy time (performance.eventLoopUtilization: the loop's time
   * outside its wait for I/O) per record acknowledged inside the window, in us, harness included; and
   * the loop's busy fraction of the window (1: the loop is the limit).
   */
  loopBusyUsPerRecord: number;
  loopUtilization: number;
}

export interface WalMeasurement extends WalRowMeasurement {
  recordSizeBytes: number;
  /** The WAL's syncMode in this row ('worker', the default, unless the row says otherwise). */
  syncMode: SyncMode;
  /** Device and raw-ceiling baselines measured right before and after this row. */
  paired: PairedBaseline;
  /** Acknowledgements per second of the harness with a store that does no I/O, same writer count. */
  loopCeilingOpsPerSec: number;
  /** That harness's own loop busy time per record, in us: what the WAL adds is the difference. */
  loopCeilingBusyUsPerRecord: number;
}

interface Counters {
  appends: number;
  syncs: number;
  syncedBytes: number;
}

function countersOf(wal: Wal): Counters {
  const { appends, syncs, syncedBytes } = wal.stats();
  return { appends, syncs, syncedBytes };
}

/** Loop busy time per record, in us (NaN when nothing was acknowledged). */
export function busyUsPerRecord(loop: EventLoopUtilization, records: number): number {
  return records === 0 ? Number.NaN : (loop.active * 1000) / records;
}

export async function measureWalRow(walDir: string, payload: Buffer, writersCount: number, profile: BenchProfile, progress: Progress, syncMode: SyncMode = 'worker'): Promise<WalRowMeasurement> {
  const wal = await Wal.open({ dir: walDir, segmentSizeBytes: profile.walSegmentSizeBytes, syncMode });
  try {
    let atStart: Counters = countersOf(wal);
    let atEnd: Counters = atStart;
    let loopAtStart = performance.eventLoopUtilization();
    let loop = loopAtStart;
    const measured = await runClosedLoop({
      writersCount,
      warmupMs: profile.warmupMs,
      windowMs: profile.windowMs,
      write: () => wal.waitDurable(wal.append(payload)),
      onWindowStart: () => {
        atStart = countersOf(wal);
        loopAtStart = performance.eventLoopUtilization();
      },
      onWindowEnd: () => {
        atEnd = countersOf(wal);
        loop = performance.eventLoopUtilization(loopAtStart);
      },
      onTick: (fraction) => progress.advance(fraction),
    });
    const appends = atEnd.appends - atStart.appends;
    const syncs = atEnd.syncs - atStart.syncs;
    return {
      ...measured,
      syncsPerRecord: appends === 0 ? Number.NaN : syncs / appends,
      bytesPerSync: syncs === 0 ? Number.NaN : (atEnd.syncedBytes - atStart.syncedBytes) / syncs,
      preallocStalls: wal.stats().preallocStalls,
      loopBusyUsPerRecord: busyUsPerRecord(loop, measured.opsCount),
      loopUtilization: loop.utilization,
    };
  } finally {
    await wal.close();
    fs.rmSync(walDir, { recursive: true, force: true });
  }
}
