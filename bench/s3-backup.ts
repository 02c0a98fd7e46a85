/**
 * The backup sink to an S3 endpoint: section 8 of `flushpoint bench` when --endpoint is given (also
 * alone: `npm run bench:s3` starts a local Ceph RGW and runs this file against it):
 *  - backup throughput (MB/s of backup objects, MB = 10^6 B) while 64 closed-loop writers load the WAL,
 *    beside the WAL's own log bytes (records with their framing, as the backup holds them) in the same window;
 *  - forceFlush latency when idle, beside one plain PUT of the same bytes (a bare PutObject: no
 *    condition, no Content-MD5, on the same client and connection pool) in the same run, alternating
 *    sample by sample: the ratio of the medians (and of the p99s), target <= 1.5;
 *  - forceFlush latency with an upload in flight (the barrier waits for it, then chains one more),
 *    beside one plain PUT of its bytes, and beside two plain PUTs one after the other (what it has to
 *    wait for at least: the upload in flight and its own), same run; the target is judged on the two.
 *
 * Alone: node dist/bench/s3-bench-main.js --endpoint URL --bucket NAME [--dir DIR] [--quick]
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BackupSink } from '../backup/sink.js';
import { S3Target } from '../backup/s3-target.js';
import type { S3TargetOptions } from '../backup/s3-options.js';
import { recordBytes } from '../record/format.js';
import { Wal } from '../wal/index.js';
import { runClosedLoop } from './closed-loop.js';
import { LatencyRecorder, nowUs, summarize, type LatencySummary } from './latency.js';
import type { ProfileName } from './profile.js';

export interface S3BenchOptions {
  s3: S3TargetOptions;
  /** Local directory for the WALs. */
  dir: string;
  writersCount: number;
  recordSizeBytes: number;
  warmupMs: number;
  windowMs: number;
  /** forceFlush samples, idle and in flight (each beside its PUT baseline). */
  samplesCount: number;
  /** Records appended before each idle forceFlush (the size of one flush). */
  flushRecordsCount: number;
}

/** What a profile measures in this section (the sizes stay those of the issue; only counts and windows shrink). */
export type S3BenchSizes = Omit<S3BenchOptions, 's3' | 'dir'>;

export const s3BenchProfiles: Readonly<Record<ProfileName, S3BenchSizes>> = {
  full: { writersCount: 64, recordSizeBytes: 256, warmupMs: 2000, windowMs: 10_000, samplesCount: 30, flushRecordsCount: 4096 },
  quick: { writersCount: 64, recordSizeBytes: 256, warmupMs: 500, windowMs: 3000, samplesCount: 10, flushRecordsCount: 4096 },
  // The smoke test's: the section's shape, not its figures.
  tiny: { writersCount: 64, recordSizeBytes: 256, warmupMs: 100, windowMs: 300, samplesCount: 2, flushRecordsCount: 256 },
};

/** Progress steps of the section: throughput, idle samples, in-flight samples. */
export const s3BenchStepsCount = 3;

export interface S3BenchResult {
  writersCount: number;
  recordSizeBytes: number;
  backupMBPerSec: number;
  /** The WAL's log bytes (records with framing) per second in the same window, MB = 10^6 B. */
  walLogMBPerSec: number;
  walOpsPerSec: number;
  flushBytes: number;
  forceFlushIdleUs: LatencySummary;
  plainPutUs: LatencySummary;
  idleRatio: number;
  /** The idle flushes' stages, p50 in ms: WAL read, data object PUT, checkpoint PUT. */
  idleStagesP50Ms: { readMs: number; writeMs: number; checkpointMs: number };
  /** p99 forceFlush / p99 plain PUT (the samples alternate, so both tails saw the same machine). */
  idleRatioP99: number;
  forceFlushInFlightUs: LatencySummary;
  twoPutsUs: LatencySummary;
  /** p50 forceFlush with an upload in flight / p50 two plain PUTs in a row (the target's). */
  inFlightRatio: number;
  inFlightRatioP99: number;
  /** p50 forceFlush with an upload in flight / p50 one plain PUT (shown, not judged: it must wait for two). */
  inFlightRatioToOnePut: number;
}

const MIB = 1024 * 1024;

async function withSink<T>(o: S3BenchOptions, name: string, flushIntervalMs: number, fn: (wal: Wal, sink: BackupSink) => Promise<T>): Promise<T> {
  const wal = await Wal.open({ dir: path.join(o.dir, name), segmentSizeBytes: 64 * MIB });
  const prefix = `${o.s3.prefix ? `${o.s3.prefix}/` : ''}${name}-${crypto.randomBytes(4).toString('hex')}`;
  const sink = await BackupSink.open({ wal, target: { s3: { ...o.s3, prefix } }, flushIntervalMs });
  try {
    return await fn(wal, sink);
  } finally {
    await sink.close();
    await wal.close();
  }
}

export async function runS3Bench(o: S3BenchOptions, log: (line: string) => void = () => {}): Promise<S3BenchResult> {
  const payload = crypto.randomBytes(o.recordSizeBytes);
  // 1. Throughput under load.
  log(`throughput: ${o.writersCount} writers, ${o.recordSizeBytes} B records, ${o.windowMs} ms window`);
  const tp = await withSink(o, 'throughput', 200, async (wal, sink) => {
    let bytes0 = 0;
    let t0 = 0;
    let bytes1 = 0;
    let t1 = 0;
    const r = await runClosedLoop({
      writersCount: o.writersCount,
      warmupMs: o.warmupMs,
      windowMs: o.windowMs,
      write: (_w) => wal.waitDurable(wal.append(payload)),
      onWindowStart: () => {
        bytes0 = sink.stats().bytesWritten;
        t0 = performance.now();
      },
      onWindowEnd: () => {
        bytes1 = sink.stats().bytesWritten;
        t1 = performance.now();
      },
    });
    // MB/s as formatMbPerSec prints them (10^6 B); before, MiB/s were printed as MB/s.
    return { backupMBPerSec: (bytes1 - bytes0) / 1e6 / ((t1 - t0) / 1000), walOpsPerSec: r.opsPerSec, walLogMBPerSec: (r.opsPerSec * recordBytes(o.recordSizeBytes)) / 1e6 };
  });
  // 2. forceFlush idle vs one plain PUT of the same bytes (alternating).
  log(`forceFlush idle: ${o.samplesCount} samples of ${o.flushRecordsCount} records`);
  // The baseline: a bare PutObject of as many (random) bytes, through a client configured as the sink's.
  const baseline = new S3Target({ ...o.s3, prefix: `${o.s3.prefix ? `${o.s3.prefix}/` : ''}baseline-${crypto.randomBytes(4).toString('hex')}` });
  let putSeq = 0;
  const plainPut = async (bytes: number): Promise<number> => {
    const body = crypto.randomBytes(bytes);
    const t = nowUs();
    await baseline.client.send(new PutObjectCommand({ Bucket: baseline.bucket, Key: baseline.key(`put-${putSeq++}`), Body: body, ContentLength: body.byteLength }));
    return nowUs() - t;
  };
  const idle = new LatencyRecorder();
  const put = new LatencyRecorder();
  let flushBytes = 0;
  const idleStagesP50Ms = await withSink(o, 'idle', 3_600_000, async (wal, sink) => {
    for (let i = 0; i < o.samplesCount; i++) {
      for (let r = 0; r < o.flushRecordsCount; r++) wal.append(payload);
      await wal.sync();
      const before = sink.stats().bytesWritten;
      const t = nowUs();
      await sink.forceFlush();
      idle.add(nowUs() - t);
      flushBytes = sink.stats().bytesWritten - before;
      // An inline flush stores its file under its name in the background: not beside the baseline PUT.
      await sink.settled();
      put.add(await plainPut(flushBytes));
    }
    const st = sink.stats().stages;
    return { readMs: st.readMs.p50Ms, writeMs: st.writeMs.p50Ms, checkpointMs: st.checkpointMs.p50Ms };
  });
  // 3. forceFlush with an upload in flight vs two PUTs back to back.
  log('forceFlush with an upload in flight');
  const inFlight = new LatencyRecorder();
  const twoPuts = new LatencyRecorder();
  const onePut = new LatencyRecorder();
  await withSink(o, 'inflight', 3_600_000, async (wal, sink) => {
    for (let i = 0; i < o.samplesCount; i++) {
      for (let r = 0; r < o.flushRecordsCount; r++) wal.append(payload);
      await wal.sync();
      const running = sink.forceFlush();
      for (let r = 0; r < o.flushRecordsCount; r++) wal.append(payload);
      await wal.sync();
      const t = nowUs();
      await sink.forceFlush();
      inFlight.add(nowUs() - t);
      await running;
      await sink.settled();
      const first = await plainPut(flushBytes);
      onePut.add(first);
      twoPuts.add(first + (await plainPut(flushBytes)));
    }
  });
  await baseline.close();
  const forceFlushIdleUs = summarize(idle.sorted());
  const plainPutUs = summarize(put.sorted());
  const forceFlushInFlightUs = summarize(inFlight.sorted());
  const twoPutsUs = summarize(twoPuts.sorted());
  const onePutInFlightUs = summarize(onePut.sorted());
  return {
    writersCount: o.writersCount,
    recordSizeBytes: o.recordSizeBytes,
    ...tp,
    flushBytes,
    forceFlushIdleUs,
    plainPutUs,
    idleRatio: forceFlushIdleUs.p50Us / plainPutUs.p50Us,
    idleRatioP99: forceFlushIdleUs.p99Us / plainPutUs.p99Us,
    idleStagesP50Ms,
    forceFlushInFlightUs,
    twoPutsUs,
    inFlightRatio: forceFlushInFlightUs.p50Us / twoPutsUs.p50Us,
    inFlightRatioP99: forceFlushInFlightUs.p99Us / twoPutsUs.p99Us,
    inFlightRatioToOnePut: forceFlushInFlightUs.p50Us / onePutInFlightUs.p50Us,
  };
}
