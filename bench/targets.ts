/**
 * The open issues' targets (12: the WAL, 10: the engine) and the backup's (4, 13), each a ratio between
 * two figures of the same run (recovery: a rate against a fixed floor). A target whose figure or baseline
 * was not measured in this run (a short run, a peer that was skipped) is "not-measured", never "met".
 */
import { ratioOf } from './format.js';
import { findWal, oneWriterDeviceBaseline, type BenchReport, type TargetResult, type WalRow } from './report.js';

export type { TargetResult };


/** Issue 12: recovery >= 500 MB/s (its text names 128 B records; every recovery row is held to it). */
export const recoveryMbPerSecFloor = 500;

/**
 * Issue 12's WAL targets, per record size: its text is the judge. 1 writer >= 0.9x the device's write +
 * fdatasync, taken as the faster of the row's paired 4 KiB overwrite and raw ceiling at batch 1
 * (oneWriterDeviceBaseline: one slow slice of either does not decide the target); the syncMode 'inline'
 * row beside it is reported and judged on its own (the issue asks for an opt-in that blocks the loop to
 * be measured and reported beside the default); 64 writers >= 0.8x raw at batch 64 (4 KiB: >= 0.6x),
 * >= 2.5x lmdb, >= 1.5x batched better-sqlite3; 1,024 writers >= 0.5x raw at batch 1,024; ack p99 <= 2x
 * the device's p99 at 64 writers, <= 5x at 256 and 1,024.
 */
export const WAL_TARGETS = {
  oneWriterVsDevice: 0.9,
  vsRawAt64: { 128: 0.8, 4096: 0.6 } as Readonly<Record<number, number>>,
  vsLmdbAt64: 2.5,
  vsBatchedSqliteAt64: 1.5,
  vsRawAt1024: 0.5,
  p99VsDevice: [
    [64, 2],
    [256, 5],
    [1024, 5],
  ] as ReadonlyArray<readonly [writersCount: number, ratio: number]>,
} as const;

type Report = Omit<BenchReport, 'targets'>;

function target(t: Omit<TargetResult, 'ratio' | 'status'>): TargetResult {
  const ratio = ratioOf(t.value, t.baseline);
  const measured = Number.isFinite(ratio);
  const met = t.comparison === '>=' ? ratio >= t.threshold : ratio <= t.threshold;
  return { ...t, ratio, status: !measured ? 'not-measured' : met ? 'met' : 'missed' };
}

/**
 * A peer's figure at a size and writer count, if it was measured: whatever the peer's final status (a
 * peer that failed at a later row keeps the rows it measured, as the engine's best peer uses them too).
 */
function peerOpsPerSec(report: Report, peerId: string, recordSizeBytes: number, writersCount: number): number | undefined {
  const peer = report.peers.find((p) => p.id === peerId);
  return peer?.rows.find((row) => row.recordSizeBytes === recordSizeBytes && row.writersCount === writersCount)?.opsPerSec;
}

export function evaluateTargets(report: Report): TargetResult[] {
  const results: TargetResult[] = [];
  const recordSizes = [...new Set(report.wal.map((row) => row.recordSizeBytes))];
  for (const size of recordSizes) {
    const at = (writers: number) => findWal(report.wal, size, writers);
    const inlineAt = (writers: number) => findWal(report.walInline, size, writers);
    const vsRaw = (writers: number, threshold: number): TargetResult =>
      target({
        id: `wal-${writers}-vs-raw-${writers}-${size}`,
        description: `${size} B, ${writers} writers: appends/s vs raw ceiling at batch ${writers}`,
        value: at(writers)?.opsPerSec ?? Number.NaN,
        valueLabel: 'flushpoint appends/s',
        baseline: at(writers)?.paired.rawRecordsPerSec ?? Number.NaN,
        baselineLabel: 'raw records/s',
        comparison: '>=',
        threshold,
      });
    const vsPeer = (peerId: string, peerLabel: string, threshold: number): TargetResult =>
      target({
        id: `wal-64-vs-${peerId}-64-${size}`,
        description: `${size} B, 64 writers: appends/s vs ${peerLabel} durable puts/s`,
        value: at(64)?.opsPerSec ?? Number.NaN,
        valueLabel: 'flushpoint appends/s',
        baseline: peerOpsPerSec(report, peerId, size, 64) ?? Number.NaN,
        baselineLabel: `${peerId} puts/s`,
        comparison: '>=',
        threshold,
      });
    const p99VsDevice = (writers: number, threshold: number): TargetResult =>
      target({
        id: `wal-${writers}-p99-vs-device-p99-${size}`,
        description: `${size} B, ${writers} writers: ack p99 vs device overwrite+fdatasync p99`,
        value: at(writers)?.ackLatency.p99Us ?? Number.NaN,
        valueLabel: 'ack p99 us',
        baseline: at(writers)?.paired.deviceP99Us ?? Number.NaN,
        baselineLabel: 'fdatasync p99 us',
        comparison: '<=',
        threshold,
      });
    // Against the faster of the paired overwrite and raw at batch 1 (oneWriterDeviceBaseline).
    const oneWriterVsDevice = (row: WalRow | undefined, id: string, mode: string): TargetResult =>
      target({
        id,
        description: `${size} B, 1 writer${mode}: appends/s vs the device's write+fdatasync/s (faster of 4 KiB overwrite, raw @batch=1)`,
        value: row?.opsPerSec ?? Number.NaN,
        valueLabel: 'flushpoint appends/s',
        baseline: row === undefined ? Number.NaN : oneWriterDeviceBaseline(row.paired),
        baselineLabel: 'device writes+syncs/s',
        comparison: '>=',
        threshold: WAL_TARGETS.oneWriterVsDevice,
      });
    const inline = inlineAt(1);
    if (inline !== undefined) results.push(oneWriterVsDevice(inline, `wal-1-writer-inline-vs-device-${size}`, ", syncMode 'inline' (opt-in, blocks the loop)"));
    results.push(
      oneWriterVsDevice(at(1), `wal-1-writer-vs-device-${size}`, ''),
      vsRaw(64, WAL_TARGETS.vsRawAt64[size] ?? 0.8),
      vsPeer('lmdb', 'lmdb', WAL_TARGETS.vsLmdbAt64),
      vsPeer('better-sqlite3-batched', 'batched better-sqlite3', WAL_TARGETS.vsBatchedSqliteAt64),
      vsRaw(1024, WAL_TARGETS.vsRawAt1024),
      ...WAL_TARGETS.p99VsDevice.map(([writers, ratio]) => p99VsDevice(writers, ratio)),
    );
  }
  for (const row of report.recovery) {
    results.push(
      target({
        id: `recovery-${row.walSizeBytes}-${row.recordSizeBytes}`,
        description: `recovery of ${Math.round(row.walSizeBytes / 2 ** 20)} MiB (${row.recordSizeBytes} B records): MB/s vs ${recoveryMbPerSecFloor} MB/s`,
        value: row.mbPerSec,
        valueLabel: 'MB/s',
        baseline: recoveryMbPerSecFloor,
        baselineLabel: 'floor MB/s',
        comparison: '>=',
        threshold: 1,
      }),
    );
  }
  const b = report.backup;
  if (b.status === 'ok') {
    results.push(
      target({
        id: 'backup-idle-force-flush-vs-direct-publish',
        description: `backup: idle forceFlush p50 vs publishing the same ${b.forceFlushRecordsCount} records directly`,
        value: b.forceFlushIdleUs.p50Us,
        valueLabel: 'forceFlush p50 us',
        baseline: b.directPublishUs.p50Us,
        baselineLabel: 'direct publish p50 us',
        comparison: '<=',
        threshold: 1.5,
      }),
      target({
        id: 'backup-append-with-sink-vs-alone',
        description: `backup: WAL appends/s with the sink + forceFlush every 100 ms vs WAL alone (${b.writersCount} writers)`,
        value: b.walWithSinkOpsPerSec,
        valueLabel: 'appends/s with sink',
        baseline: b.walAloneOpsPerSec,
        baselineLabel: 'appends/s alone',
        comparison: '>=',
        threshold: 0.8,
      }),
      target({
        id: 'backup-concurrent-calls-flushes',
        description: `backup: flushes run for ${b.concurrentCalls} concurrent forceFlush calls vs 2 (the design's bound)`,
        value: b.flushesForConcurrentCalls,
        valueLabel: 'flushes',
        baseline: 2,
        baselineLabel: 'bound',
        comparison: '<=',
        threshold: 1,
      }),
    );
  }
  results.push(...engineTargets(report), ...s3Targets(report));
  return results;
}

/** Issue 10's durable-put targets: at N writers, engine puts/s >= this x the best peer's. */
export const ENGINE_PUTS_TARGET_RATIOS: ReadonlyArray<readonly [writersCount: number, ratio: number]> = [
  [64, 2],
  [1, 1],
];

/** Issue 10's targets: durable puts vs the best peer (batched better-sqlite3 included), gets, reopen. */
function engineTargets(report: Report): TargetResult[] {
  const { puts, reads, checkpoint } = report.engine;
  const results: TargetResult[] = [];
  for (const [writersCount, threshold] of ENGINE_PUTS_TARGET_RATIOS) {
    for (const size of new Set(puts.map((r) => r.recordSizeBytes))) {
      const row = puts.find((r) => r.recordSizeBytes === size && r.writersCount === writersCount);
      results.push(
        target({
          id: `engine-puts-${writersCount}-vs-best-peer-${size}`,
          description: `engine ${size} B, ${writersCount} writer${writersCount === 1 ? '' : 's'}: durable puts/s vs the best peer (${row?.bestPeerId ?? 'none measured'})`,
          value: row?.opsPerSec ?? Number.NaN,
          valueLabel: 'engine puts/s',
          baseline: row?.bestPeerOpsPerSec ?? Number.NaN,
          baselineLabel: 'best peer puts/s',
          comparison: '>=',
          threshold,
        }),
      );
    }
  }
  results.push(
    target({
      id: 'engine-gets-vs-classic-level',
      description: `engine gets/s vs classic-level's (${reads.status === 'ok' ? reads.keysCount : '?'} keys, one get at a time)`,
      value: reads.status === 'ok' ? reads.getsPerSec : Number.NaN,
      valueLabel: 'engine gets/s',
      baseline: reads.status === 'ok' ? reads.classicLevelGetsPerSec : Number.NaN,
      baselineLabel: 'classic-level gets/s',
      comparison: '>=',
      threshold: 1,
    }),
    target({
      id: 'engine-reopen-vs-index-insert',
      description: `engine reopen of ${checkpoint.keysCount} keys (checkpoint + WAL replay): keys/s vs in-memory index inserts/s`,
      value: checkpoint.reopenKeysPerSec,
      valueLabel: 'reopen keys/s',
      baseline: checkpoint.indexInsertKeysPerSec,
      baselineLabel: 'index inserts/s',
      comparison: '>=',
      threshold: 0.5,
    }),
  );
  return results;
}

/** Issue 13's: forceFlush to S3, idle and with an upload in flight, beside plain PUTs of the same bytes (not-measured without --endpoint). */
function s3Targets(report: Report): TargetResult[] {
  const s = report.s3Backup.status === 'ok' ? report.s3Backup : undefined;
  const rows = [
    ['s3-idle-force-flush-vs-plain-put', 'idle forceFlush p50 (data object + conditional checkpoint) vs one plain PUT of the same bytes', s?.forceFlushIdleUs, s?.plainPutUs, 'plain PUT'],
    ['s3-in-flight-force-flush-vs-plain-puts', 'forceFlush p50 with an upload in flight vs two plain PUTs in a row (the upload it waits for, then its own)', s?.forceFlushInFlightUs, s?.twoPutsUs, 'two PUTs'],
  ] as const;
  return rows.map(([id, what, value, baseline, baselineName]) =>
    target({
      id,
      description: `S3: ${what}`,
      value: value?.p50Us ?? Number.NaN,
      valueLabel: 'forceFlush p50 us',
      baseline: baseline?.p50Us ?? Number.NaN,
      baselineLabel: `${baselineName} p50 us`,
      comparison: '<=',
      threshold: 1.5,
    }),
  );
}
