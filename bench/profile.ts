/**
 * How much the benchmark measures: every duration, count and size of a run, collected in one place.
 * `full` is the run the targets are judged on (under 10 minutes); `quick` is what `npm start`
 * runs (about a minute); `tiny` exists for the smoke test, which checks the report's shape only.
 */

export type ProfileName = 'full' | 'quick' | 'tiny';

export interface BenchProfile {
  name: ProfileName;
  /** Section 1: total time per device pattern (append-grow, overwrite), split over interleaved rounds. */
  deviceDurationMs: number;
  /** Section 1: the two patterns alternate this many times, so drift in a noisy machine hits both. */
  deviceRoundsCount: number;
  /** Sections 1 and 2: size of the zero-filled, fdatasync'd file that overwrites go to. */
  preallocatedFileSizeBytes: number;
  /** Section 2: time per batch size, split over two interleaved passes. */
  rawDurationMs: number;
  /** Section 2: batch sizes for 128 B records (the list, plus 4 so every writer count has a match). */
  rawBatchRecordsCounts: readonly number[];
  /** Sections 3 and 4: record sizes. */
  recordSizesBytes: readonly number[];
  /** Section 3: writer counts per record size. */
  walWritersCounts: Readonly<Record<number, readonly number[]>>;
  /** Section 3: writer counts per record size also measured with syncMode 'inline' (opt-in, blocks the loop). */
  walInlineWritersCounts: Readonly<Record<number, readonly number[]>>;
  /** Section 3: writer counts per record size also measured with commitWait 'sleep' (opt-in: no polling, the least CPU). */
  walSleepWritersCounts: Readonly<Record<number, readonly number[]>>;
  /**
   * Section 3: writer counts per record size also measured with the log truncated behind the writers
   * (truncateBefore(durableLsn) after each segment's worth of bytes, as a checkpointing consumer does),
   * where segment recycling (recycleSegments) takes the place of the zero-fill.
   */
  walTruncatingWritersCounts: Readonly<Record<number, readonly number[]>>;
  /** Section 3: the measured window of those rows, long enough for segments to roll (and be recycled) inside it. */
  walTruncatingWindowMs: number;
  /** Sections 3 and 4: time to run before measuring, and the measured window, per (store, size, writers). */
  warmupMs: number;
  windowMs: number;
  /**
   * Section 3: a device overwrite loop runs this long (split in halves) right before and right after
   * each WAL measurement, so that each row has a device baseline taken under the same conditions.
   */
  pairedDeviceSliceMs: number;
  /** Section 3: measured window of the acknowledgement ceiling (closed loop on a store with no I/O). */
  loopCeilingWindowMs: number;
  /** Section 4: writer counts per record size for the peers (a subset of the WAL's, in a short run). */
  peerWritersCounts: Readonly<Record<number, readonly number[]>>;
  /** Section 5: WAL sizes to recover, each with every record size in recoveryRecordSizesBytes. */
  recoverySizesBytes: readonly number[];
  recoveryRecordSizesBytes: readonly number[];
  /** Section 5: opens per size; the median is reported. */
  recoveryOpensCount: number;
  /** Segment size passed to Wal.open; undefined leaves the WAL's default. */
  walSegmentSizeBytes: number | undefined;
  /** Section 6: closed-loop writers and record size while the backup sink runs. */
  backupWritersCount: number;
  backupRecordSizeBytes: number;
  /** Section 6: WAL-alone / WAL-with-sink pairs for the overhead ratio. */
  backupOverheadRoundsCount: number;
  /** Section 6: forceFlush samples (idle, and with a flush in flight), each after this many records. */
  backupForceFlushSamplesCount: number;
  backupForceFlushRecordsCount: number;
  /** Section 6: concurrent forceFlush calls made while a flush runs. */
  backupConcurrentCallsCount: number;
  /** Section 7: engine durable-put writer counts per record size (the peers' figures come from section 4). */
  engineWritersCounts: Readonly<Record<number, readonly number[]>>;
  /** Section 7: keys (100 B values) for gets and scans, engine vs classic-level. */
  engineReadKeysCount: number;
  /** Section 7: keys (8 B keys, 16 B values) checkpointed and reopened (issue 10's target names 1 million). */
  engineCheckpointKeysCount: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const writersAll = [1, 4, 16, 64, 256, 1024] as const;
const rawBatchesAll = [1, 4, 16, 64, 256, 1024, 4096] as const;

export const profiles: Readonly<Record<ProfileName, BenchProfile>> = {
  full: {
    name: 'full',
    deviceDurationMs: 10_000,
    deviceRoundsCount: 5,
    preallocatedFileSizeBytes: 64 * MiB,
    rawDurationMs: 3_000,
    rawBatchRecordsCounts: rawBatchesAll,
    recordSizesBytes: [128, 4 * KiB],
    walWritersCounts: { 128: writersAll, [4 * KiB]: writersAll },
    walInlineWritersCounts: { 128: [1], [4 * KiB]: [1] },
    walSleepWritersCounts: { 128: [1], [4 * KiB]: [1] },
    walTruncatingWritersCounts: { 128: [64, 1024], [4 * KiB]: [64] },
    walTruncatingWindowMs: 4_000,
    warmupMs: 500,
    windowMs: 4_000,
    pairedDeviceSliceMs: 800,
    loopCeilingWindowMs: 1_000,
    peerWritersCounts: { 128: writersAll, [4 * KiB]: writersAll },
    recoverySizesBytes: [64 * MiB, 512 * MiB],
    recoveryRecordSizesBytes: [128, 4 * KiB],
    recoveryOpensCount: 3,
    walSegmentSizeBytes: undefined,
    backupWritersCount: 64,
    backupRecordSizeBytes: 128,
    backupOverheadRoundsCount: 3,
    backupForceFlushSamplesCount: 30,
    backupForceFlushRecordsCount: 1024,
    backupConcurrentCallsCount: 1000,
    engineWritersCounts: { 128: [1, 64], [4 * KiB]: [1, 64] },
    engineReadKeysCount: 100_000,
    engineCheckpointKeysCount: 1_000_000,
  },
  quick: {
    name: 'quick',
    deviceDurationMs: 2_000,
    deviceRoundsCount: 4,
    preallocatedFileSizeBytes: 32 * MiB,
    rawDurationMs: 400,
    rawBatchRecordsCounts: rawBatchesAll,
    recordSizesBytes: [128, 4 * KiB],
    walWritersCounts: { 128: writersAll, [4 * KiB]: [1, 64] },
    walInlineWritersCounts: { 128: [1], [4 * KiB]: [1] },
    walSleepWritersCounts: { 128: [1], [4 * KiB]: [1] },
    walTruncatingWritersCounts: { 128: [1024], [4 * KiB]: [64] },
    walTruncatingWindowMs: 3_000,
    warmupMs: 250,
    windowMs: 1_000,
    pairedDeviceSliceMs: 300,
    loopCeilingWindowMs: 300,
    peerWritersCounts: { 128: [1, 64], [4 * KiB]: [64] },
    recoverySizesBytes: [64 * MiB],
    recoveryRecordSizesBytes: [128, 4 * KiB],
    recoveryOpensCount: 3,
    walSegmentSizeBytes: undefined,
    backupWritersCount: 64,
    backupRecordSizeBytes: 128,
    backupOverheadRoundsCount: 1,
    backupForceFlushSamplesCount: 10,
    backupForceFlushRecordsCount: 1024,
    backupConcurrentCallsCount: 1000,
    engineWritersCounts: { 128: [1, 64], [4 * KiB]: [64] },
    engineReadKeysCount: 20_000,
    engineCheckpointKeysCount: 200_000,
  },
  tiny: {
    name: 'tiny',
    deviceDurationMs: 150,
    deviceRoundsCount: 2,
    preallocatedFileSizeBytes: 1 * MiB,
    rawDurationMs: 40,
    rawBatchRecordsCounts: [1, 4, 64],
    recordSizesBytes: [128],
    walWritersCounts: { 128: [1, 4] },
    walInlineWritersCounts: { 128: [1] },
    walSleepWritersCounts: { 128: [1] },
    walTruncatingWritersCounts: { 128: [4] },
    walTruncatingWindowMs: 200,
    warmupMs: 30,
    windowMs: 200,
    pairedDeviceSliceMs: 40,
    loopCeilingWindowMs: 50,
    peerWritersCounts: { 128: [1, 4] },
    recoverySizesBytes: [1 * MiB],
    recoveryRecordSizesBytes: [128],
    recoveryOpensCount: 1,
    walSegmentSizeBytes: 1 * MiB,
    backupWritersCount: 4,
    backupRecordSizeBytes: 128,
    backupOverheadRoundsCount: 1,
    backupForceFlushSamplesCount: 2,
    backupForceFlushRecordsCount: 16,
    backupConcurrentCallsCount: 100,
    engineWritersCounts: { 128: [1, 4] },
    engineReadKeysCount: 2_000,
    engineCheckpointKeysCount: 5_000,
  },
};

/** Writer counts for a record size (empty when the profile does not measure it). */
export function writersCountsFor(table: Readonly<Record<number, readonly number[]>>, recordSizeBytes: number): readonly number[] {
  return table[recordSizeBytes] ?? [];
}
