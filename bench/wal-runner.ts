/**
 * Section 3, the WAL: durable appends per second under closed-loop writers, each doing
 * `const lsn = wal.append(payload); await wal.waitDurable(lsn)` in a loop. A fresh WAL per measurement,
 * so no run inherits another's segments. Syncs per record come from the WAL's own counters, read as
 * the window opens and closes: under load it must be far below 1 (group commit at work).
 */
import fs from 'node:fs';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { SEGMENT_SIZE_BYTES_DEFAULT, Wal, type SyncMode } from '../wal/index.js';
import type { CommitWait } from '../fs/file-system.js';
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
   * the loop's busy fraction of the window (1: the loop is the limit, or it polled for its commits:
   * commitWait 'auto' polls while the log is busy, so its rows count the polling too; the 'sleep' row
   * shows the loop's own share).
   */
  loopBusyUsPerRecord: number;
  loopUtilization: number;
  /** Segments started inside the window, and how many of them in a recycled file. */
  segmentsStarted: number;
  segmentsRecycled: number;
}

/** How the log is used in a row: appended only ('append', the default), or also truncated behind the writers ('truncate'). */
export type WalRowUse = 'append' | 'truncate';

/** A truncating row's warm-up lasts until this many segments were started, so recycling is in its steady state. */
const TRUNCATING_WARMUP_SEGMENTS_COUNT = 3;

export interface WalMeasurement extends WalRowMeasurement {
  recordSizeBytes: number;
  /** The WAL's syncMode in this row ('worker', the default, unless the row says otherwise). */
  syncMode: SyncMode;
  /** Appended only, or truncated behind the writers (segment recycling at work). */
  use: WalRowUse;
  /** The WAL's commitWait in this row, where it is not the default ('auto'). */
  commitWait?: CommitWait;
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
  segmentsCreated: number;
  segmentsRecycled: number;
}

function countersOf(wal: Wal): Counters {
  const { appends, syncs, syncedBytes, segmentsCreated, segmentsRecycled } = wal.stats();
  return { appends, syncs, syncedBytes, segmentsCreated, segmentsRecycled };
}

/**
 * Truncation behind the writers, as a consumer that checkpoints does it: each time another segment's
 * worth of bytes has been appended, truncateBefore(durableLsn). Returns a function that stops it.
 */
function truncateBehind(wal: Wal, segmentSizeBytes: number): () => void {
  let truncatedAtBytes = 0;
  const onDurable = (durableLsn: number): void => {
    if (wal.appendedBytes - truncatedAtBytes < segmentSizeBytes) return;
    truncatedAtBytes = wal.appendedBytes;
    wal.truncateBefore(durableLsn).catch(() => {}); // only WAL_CLOSED at the end of the row
  };
  wal.on('durable', onDurable);
  return () => wal.off('durable', onDurable);
}

/** Batches of `writersCount` records, synced, until `segmentsCount` segments were started: a truncating row's steady state. */
async function runUntilSegments(wal: Wal, payload: Buffer, writersCount: number, segmentsCount: number): Promise<void> {
  while (wal.stats().segmentsCreated < segmentsCount) {
    for (let i = 0; i < writersCount; i++) wal.append(payload);
    await wal.sync();
  }
}

/** Loop busy time per record, in us (NaN when nothing was acknowledged). */
export function busyUsPerRecord(loop: EventLoopUtilization, records: number): number {
  return records === 0 ? Number.NaN : (loop.active * 1000) / records;
}

/** How a row runs the WAL: its syncMode and commitWait (the defaults unless set), and whether it truncates behind the writers. */
export interface WalRowMode {
  syncMode?: SyncMode;
  commitWait?: CommitWait;
  use?: WalRowUse;
}

export async function measureWalRow(walDir: string, payload: Buffer, writersCount: number, profile: BenchProfile, progress: Progress, mode: WalRowMode = {}): Promise<WalRowMeasurement> {
  const { syncMode = 'worker', commitWait, use = 'append' } = mode;
  const wal = await Wal.open({ dir: walDir, segmentSizeBytes: profile.walSegmentSizeBytes, syncMode, commitWait });
  let stopTruncating = (): void => {};
  try {
    if (use === 'truncate') {
      stopTruncating = truncateBehind(wal, profile.walSegmentSizeBytes ?? SEGMENT_SIZE_BYTES_DEFAULT);
      await runUntilSegments(wal, payload, writersCount, TRUNCATING_WARMUP_SEGMENTS_COUNT);
    }
    let atStart: Counters = countersOf(wal);
    let atEnd: Counters = atStart;
    let loopAtStart = performance.eventLoopUtilization();
    let loop = loopAtStart;
    const measured = await runClosedLoop({
      writersCount,
      warmupMs: profile.warmupMs,
      windowMs: use === 'truncate' ? profile.walTruncatingWindowMs : profile.windowMs,
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
      segmentsStarted: atEnd.segmentsCreated - atStart.segmentsCreated,
      segmentsRecycled: atEnd.segmentsRecycled - atStart.segmentsRecycled,
    };
  } finally {
    stopTruncating();
    await wal.close();
    fs.rmSync(walDir, { recursive: true, force: true });
  }
}
