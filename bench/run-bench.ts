/**
 * One benchmark run, section by section, in a directory the caller owns (and removes). Sections run in
 * a fixed order so that every baseline is measured in the same run as the figures judged against it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { backupStepsCount, measureBackup } from './backup-runner.js';
import { measureDeviceLatency } from './device-latency.js';
import { probeDevice } from './device-probe.js';
import { engineStepsCount, measureEngine } from './engine-runner.js';
import { describeEnvironment } from './environment.js';
import { MachineLoadMonitor } from './machine-load.js';
import { peers as allPeers } from './peer-runner.js';
import type { BenchProfile } from './profile.js';
import type { Progress } from '../core/progress.js';
import { measureRawCeiling, rawCeilingStepsCount } from './raw-ceiling.js';
import { measureRecovery, recoveryStepsCount } from './recovery.js';
import { assembleReport, type BackupSection, type BenchReport, type S3BackupSection } from './report.js';
import { runS3Bench, s3BenchProfiles, s3BenchStepsCount } from './s3-backup.js';
import type { S3TargetOptions } from '../backup/s3-options.js';
import { evaluateTargets } from './targets.js';
import { compareStores, storeComparisonStepsCount } from './store-comparison.js';

export interface RunBenchOptions {
  /** An existing, empty directory on the device to measure; the run leaves files in it. */
  dir: string;
  profile: BenchProfile;
  progress: Progress;
  /** Section 8's endpoint, bucket and prefix; without it the section is not run and says so. */
  s3?: S3TargetOptions;
}

/** Section 8: the sink to an S3 endpoint; a failure there is reported in the section, not thrown away with the run. */
async function measureS3Section(dir: string, profile: BenchProfile, progress: Progress, s3: S3TargetOptions | undefined): Promise<S3BackupSection> {
  if (s3 === undefined) return { status: 'not-measured', reason: 'no --endpoint given (flushpoint bench --endpoint URL --bucket NAME; keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)' };
  const where = { endpoint: s3.endpoint ?? 'AWS', bucket: s3.bucket, prefix: s3.prefix ?? '' };
  try {
    const result = await runS3Bench({ s3, dir, ...s3BenchProfiles[profile.name] }, (line) => progress.step(line));
    return { status: 'ok', ...where, ...result };
  } catch (err) {
    return { status: 'not-measured', reason: `failed against ${where.endpoint} s3://${where.bucket}/${where.prefix}: ${(err as Error).message}` };
  }
}

/** Section 6: the backup sink under WAL load, forceFlush latency, and coalescing of concurrent calls. */
async function measureBackupSection(dir: string, profile: BenchProfile, progress: Progress): Promise<BackupSection> {
  const result = await measureBackup(
    dir,
    {
      writersCount: profile.backupWritersCount,
      recordSizeBytes: profile.backupRecordSizeBytes,
      warmupMs: profile.warmupMs,
      windowMs: profile.windowMs,
      overheadRoundsCount: profile.backupOverheadRoundsCount,
      forceFlushSamplesCount: profile.backupForceFlushSamplesCount,
      forceFlushRecordsCount: profile.backupForceFlushRecordsCount,
      concurrentCallsCount: profile.backupConcurrentCallsCount,
      walSegmentSizeBytes: profile.walSegmentSizeBytes,
    },
    progress,
  );
  return { status: 'ok', ...result };
}

export async function runBench({ dir, profile, progress, s3 }: RunBenchOptions): Promise<BenchReport> {
  const startedAtMs = Date.now();
  const load = new MachineLoadMonitor();
  const environment = describeEnvironment();
  const info = probeDevice(dir);
  const sectionDir = (name: string): string => {
    const sub = path.join(dir, name);
    fs.mkdirSync(sub, { recursive: true });
    return sub;
  };

  progress.section('1. device', profile.deviceRoundsCount * 2);
  const device = { info, ...(await measureDeviceLatency(sectionDir('device'), info, profile, progress)) };

  progress.section('2. raw ceiling', rawCeilingStepsCount(profile));
  const rawCeiling = await measureRawCeiling(sectionDir('raw'), profile, progress);

  progress.section('3-4. WAL and peers', storeComparisonStepsCount(profile, allPeers.length));
  const { wal, walInline, walSleep, walTruncating, peers, enginePuts } = await compareStores(sectionDir('stores'), profile, progress);

  progress.section('5. recovery', recoveryStepsCount(profile));
  const recovery = await measureRecovery(sectionDir('recovery'), profile, progress);

  progress.section('6. backup', backupStepsCount(profile.backupOverheadRoundsCount));
  const backup = await measureBackupSection(sectionDir('backup'), profile, progress);

  progress.section('7. engine', engineStepsCount());
  const engine = await measureEngine(sectionDir('engine'), profile, progress, enginePuts);

  if (s3 !== undefined) progress.section('8. backup to S3', s3BenchStepsCount);
  const s3Backup = await measureS3Section(sectionDir('s3'), profile, progress, s3);
  progress.done();
  const machineLoad = load.finish();

  return assembleReport(
    {
      profile: profile.name,
      startedAt: new Date(startedAtMs).toISOString(),
      durationMs: Date.now() - startedAtMs,
      environment,
      machineLoad,
      device,
      rawCeiling,
      wal,
      walInline,
      walSleep,
      walTruncating,
      peers,
      recovery,
      backup,
      engine,
      s3Backup,
    },
    evaluateTargets,
  );
}
