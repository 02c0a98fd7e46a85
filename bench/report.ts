/**
 * The report: every figure of a run, each beside the baseline it is judged against (measured in the
 * same run) and the ratio. This is the JSON's shape; the table and the charts are drawn from it.
 * assembleReport() is pure: it only joins sections and divides.
 */
import type { BackupBenchResult } from './backup-runner.js';
import type { EngineCheckpointResult, EnginePutMeasurement, EngineReads, EngineSection } from './engine-runner.js';
import type { DeviceInfo } from './device-probe.js';
import type { DeviceLatencyResult } from './device-latency.js';
import type { Environment } from './environment.js';
import type { MachineLoad } from './machine-load.js';
import { ratioOf } from './format.js';
import type { PeerMeasurement, PeerResult } from './peer-runner.js';
import type { ProfileName } from './profile.js';
import type { RawCeilingResult } from './raw-ceiling.js';
import type { RecoveryResult } from './recovery.js';
import type { S3BenchResult } from './s3-backup.js';
import type { WalMeasurement } from './wal-runner.js';

/** 2: walPoll (commitWait 'poll' rows) became walSleep when the default became 'auto'. */
export const reportSchemaVersion = 3;

/** One performance target: a figure, its baseline from the same run, and the ratio between them. */
export interface TargetResult {
  id: string;
  description: string;
  value: number;
  valueLabel: string;
  baseline: number;
  baselineLabel: string;
  ratio: number;
  comparison: '>=' | '<=';
  threshold: number;
  status: 'met' | 'missed' | 'not-measured';
}

export interface RawCeilingRow extends RawCeilingResult {
  /** Baseline: the same record size at batch 1. ratio = recordsPerSec / that (the gain from batching). */
  batch1RecordsPerSec: number;
  ratioToBatch1: number;
}

export interface WalRow extends WalMeasurement {
  /** opsPerSec / the paired raw ceiling at batch = writersCount. */
  ratioToRawCeiling: number;
  /** The device's write + fdatasync/s a 1-writer row is judged against: oneWriterDeviceBaseline(paired); NaN for other counts. */
  deviceBaselineOpsPerSec: number;
  /** opsPerSec / deviceBaselineOpsPerSec; only for 1 writer (NaN for other counts). */
  ratioToDevice: number;
  /** ack p99 / the paired device overwrite p99. */
  p99RatioToDevice: number;
  /** opsPerSec / the harness's acknowledgement ceiling at this writer count. */
  ratioToLoopCeiling: number;
}

export interface PeerRow extends PeerMeasurement {
  /** Baseline: flushpoint at the same record size and writer count. ratio = flushpoint / peer. */
  flushpointOpsPerSec: number;
  flushpointOverPeer: number;
}

export interface PeerSection extends Omit<PeerResult, 'measurements'> {
  rows: PeerRow[];
}

export interface RecoveryRow extends RecoveryResult {
  /** mbPerSec / rawReadMbPerSec (the baseline: plain sequential reads of the same files). */
  ratioToRawRead: number;
}

/** Section 6: the backup sink and forceFlush (bench/backup-runner.ts), or why it was not measured. */
export type BackupSection = { status: 'not-measured'; reason: string } | ({ status: 'ok' } & BackupBenchResult);

/** Section 8: the backup sink to an S3 endpoint (bench/s3-backup.ts), run when one is given, or why it was not. */
export type S3BackupSection = { status: 'not-measured'; reason: string } | ({ status: 'ok'; endpoint: string; bucket: string; prefix: string } & S3BenchResult);

/** An engine durable-put row beside the WAL alone (same section) and every peer at the same size and writers (section 4). */
export interface EnginePutRow extends EnginePutMeasurement {
  peers: Array<{ id: string; opsPerSec: number }>;
  /** Baseline: the fastest peer that was measured at this size and writer count (undefined: none was). */
  bestPeerId: string | undefined;
  bestPeerOpsPerSec: number;
  ratioToBestPeer: number;
}

export interface EngineReport {
  puts: EnginePutRow[];
  reads: EngineReads;
  checkpoint: EngineCheckpointResult;
}

/** What a run records about itself, shared by the parts and the finished report. */
export interface RunContext {
  profile: ProfileName;
  startedAt: string;
  durationMs: number;
  environment: Environment;
  /** How busy the machine was with other work during the run. */
  machineLoad: MachineLoad;
  device: DeviceLatencyResult & { info: DeviceInfo };
  backup: BackupSection;
  s3Backup: S3BackupSection;
}

export interface BenchReport extends RunContext {
  schemaVersion: number;
  tool: string;
  rawCeiling: RawCeilingRow[];
  wal: WalRow[];
  /** Section 3's rows with syncMode 'inline' (opt-in; the event loop blocks on every commit). */
  walInline: WalRow[];
  /** Section 3's rows with commitWait 'sleep' (opt-in; the loop and the commit thread sleep until woken: the least CPU). */
  walSleep: WalRow[];
  /** Section 3's rows with the log truncated behind the writers (segment recycling at work). */
  walTruncating: WalRow[];
  peers: PeerSection[];
  recovery: RecoveryRow[];
  engine: EngineReport;
  targets: TargetResult[];
}

/** The sections as measured, before baselines are joined and ratios taken. */
export interface ReportParts extends RunContext {
  rawCeiling: RawCeilingResult[];
  wal: WalMeasurement[];
  walInline: WalMeasurement[];
  walSleep: WalMeasurement[];
  walTruncating: WalMeasurement[];
  peers: PeerResult[];
  recovery: RecoveryResult[];
  engine: EngineSection;
}

export function findRaw(rows: readonly RawCeilingResult[], recordSizeBytes: number, batchRecordsCount: number): RawCeilingResult | undefined {
  return rows.find((row) => row.recordSizeBytes === recordSizeBytes && row.batchRecordsCount === batchRecordsCount);
}

export function findWal<T extends WalMeasurement>(rows: readonly T[], recordSizeBytes: number, writersCount: number): T | undefined {
  return rows.find((row) => row.recordSizeBytes === recordSizeBytes && row.writersCount === writersCount);
}

/**
 * The device baseline of a 1-writer row: the faster of its paired slices' 4 KiB overwrite + fdatasync
 * and raw ceiling at batch 1 (one record's writev + fdatasync, preallocated file), both measuring the
 * device's write + sync. One slow slice (the disk still busy with the section before) once made a row
 * read 2.08x the device while raw at batch 1 ran 2.4x the device in the same slices.
 */
export function oneWriterDeviceBaseline(paired: { deviceOpsPerSec: number; rawRecordsPerSec: number }): number {
  const measured = [paired.deviceOpsPerSec, paired.rawRecordsPerSec].filter((v) => Number.isFinite(v));
  return measured.length === 0 ? Number.NaN : Math.max(...measured);
}

export function assembleReport(parts: ReportParts, evaluate: (report: Omit<BenchReport, 'targets'>) => TargetResult[]): BenchReport {
  const rawCeiling: RawCeilingRow[] = parts.rawCeiling.map((row) => {
    const batch1RecordsPerSec = findRaw(parts.rawCeiling, row.recordSizeBytes, 1)?.recordsPerSec ?? Number.NaN;
    return { ...row, batch1RecordsPerSec, ratioToBatch1: ratioOf(row.recordsPerSec, batch1RecordsPerSec) };
  });
  const walRow = (row: WalMeasurement): WalRow => {
    const deviceBaselineOpsPerSec = row.writersCount === 1 ? oneWriterDeviceBaseline(row.paired) : Number.NaN;
    return {
      ...row,
      ratioToRawCeiling: ratioOf(row.opsPerSec, row.paired.rawRecordsPerSec),
      deviceBaselineOpsPerSec,
      ratioToDevice: row.writersCount === 1 ? ratioOf(row.opsPerSec, deviceBaselineOpsPerSec) : Number.NaN,
      p99RatioToDevice: ratioOf(row.ackLatency.p99Us, row.paired.deviceP99Us),
      ratioToLoopCeiling: ratioOf(row.opsPerSec, row.loopCeilingOpsPerSec),
    };
  };
  const wal: WalRow[] = parts.wal.map(walRow);
  const walInline: WalRow[] = parts.walInline.map(walRow);
  const walSleep: WalRow[] = parts.walSleep.map(walRow);
  const walTruncating: WalRow[] = parts.walTruncating.map(walRow);
  const peers: PeerSection[] = parts.peers.map(({ measurements, ...peer }) => ({
    ...peer,
    rows: measurements.map((row) => {
      const flushpointOpsPerSec = findWal(parts.wal, row.recordSizeBytes, row.writersCount)?.opsPerSec ?? Number.NaN;
      return { ...row, flushpointOpsPerSec, flushpointOverPeer: ratioOf(flushpointOpsPerSec, row.opsPerSec) };
    }),
  }));
  const recovery: RecoveryRow[] = parts.recovery.map((row) => ({ ...row, ratioToRawRead: ratioOf(row.mbPerSec, row.rawReadMbPerSec) }));
  const enginePuts: EnginePutRow[] = parts.engine.puts.map((row) => {
    const measured = parts.peers.flatMap((peer) => {
      const m = peer.measurements.find((x) => x.recordSizeBytes === row.recordSizeBytes && x.writersCount === row.writersCount);
      return m === undefined ? [] : [{ id: peer.id, opsPerSec: m.opsPerSec }];
    });
    const best = measured.reduce<{ id: string; opsPerSec: number } | undefined>((b, p) => (b === undefined || p.opsPerSec > b.opsPerSec ? p : b), undefined);
    const bestPeerOpsPerSec = best?.opsPerSec ?? Number.NaN;
    return { ...row, peers: measured, bestPeerId: best?.id, bestPeerOpsPerSec, ratioToBestPeer: ratioOf(row.opsPerSec, bestPeerOpsPerSec) };
  });
  const withoutTargets: Omit<BenchReport, 'targets'> = {
    ...parts,
    schemaVersion: reportSchemaVersion,
    tool: 'flushpoint bench',
    rawCeiling,
    wal,
    walInline,
    walSleep,
    walTruncating,
    peers,
    recovery,
    engine: { ...parts.engine, puts: enginePuts },
  };
  return { ...withoutTargets, targets: evaluate(withoutTargets) };
}
