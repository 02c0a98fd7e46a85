/**
 * The backup sink to an S3 endpoint (run when an endpoint is given; `npm run bench:s3` starts a local
 * Ceph RGW for it):
 *  - backup throughput (MB/s of backup objects) while 64 closed-loop writers load the WAL, beside the
 *    WAL's own payload MB/s in the same window;
 *  - forceFlush latency when idle, beside one plain PUT of the same bytes (a backup object of the same
 *    size) in the same run, alternating sample by sample: the ratio of the medians, target <= 1.5;
 *  - forceFlush latency with an upload in flight (the barrier waits for it, then chains one more),
 *    beside two plain PUTs one after the other (what it has to wait for at least), same run.
 *
 *   node dist/bench/s3-backup.js --endpoint URL --bucket NAME [--dir DIR] [--quick]
 *   credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BackupSink } from '../backup/sink.js';
import { S3Target } from '../backup/s3-target.js';
import type { S3TargetOptions } from '../backup/s3-options.js';
import { Wal } from '../wal/index.js';
import { runClosedLoop } from './closed-loop.js';
import { LatencyRecorder, nowUs, summarize, type LatencySummary } from './latency.js';

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

export interface S3BenchResult {
  writersCount: number;
  recordSizeBytes: number;
  backupMBPerSec: number;
  walPayloadMBPerSec: number;
  walOpsPerSec: number;
  flushBytes: number;
  forceFlushIdleUs: LatencySummary;
  plainPutUs: LatencySummary;
  idleRatio: number;
  /** The idle flushes' stages, p50 in ms: WAL read, data object PUT, checkpoint PUT. */
  idleStagesP50Ms: { readMs: number; writeMs: number; checkpointMs: number };
  forceFlushInFlightUs: LatencySummary;
  twoPutsUs: LatencySummary;
  inFlightRatio: number;
}

const MB = 1024 * 1024;

async function withSink<T>(o: S3BenchOptions, name: string, flushIntervalMs: number, fn: (wal: Wal, sink: BackupSink) => Promise<T>): Promise<T> {
  const wal = await Wal.open({ dir: path.join(o.dir, name), segmentSizeBytes: 64 * MB });
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
    return { backupMBPerSec: (bytes1 - bytes0) / MB / ((t1 - t0) / 1000), walOpsPerSec: r.opsPerSec, walPayloadMBPerSec: (r.opsPerSec * o.recordSizeBytes) / MB };
  });
  // 2. forceFlush idle vs one plain PUT of the same bytes (alternating).
  log(`forceFlush idle: ${o.samplesCount} samples of ${o.flushRecordsCount} records`);
  const baseline = new S3Target({ ...o.s3, prefix: `${o.s3.prefix ? `${o.s3.prefix}/` : ''}baseline-${crypto.randomBytes(4).toString('hex')}` });
  await baseline.prepare();
  let putSeq = 0;
  const plainPut = async (bytes: number): Promise<number> => {
    const body = crypto.randomBytes(bytes);
    const t = nowUs();
    await baseline.putFile(`put-${putSeq++}`, [body]);
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
      put.add(await plainPut(flushBytes));
    }
    const st = sink.stats().stages;
    return { readMs: st.readMs.p50Ms, writeMs: st.writeMs.p50Ms, checkpointMs: st.checkpointMs.p50Ms };
  });
  // 3. forceFlush with an upload in flight vs two PUTs back to back.
  log('forceFlush with an upload in flight');
  const inFlight = new LatencyRecorder();
  const twoPuts = new LatencyRecorder();
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
      twoPuts.add((await plainPut(flushBytes)) + (await plainPut(flushBytes)));
    }
  });
  await baseline.close();
  const forceFlushIdleUs = summarize(idle.sorted());
  const plainPutUs = summarize(put.sorted());
  const forceFlushInFlightUs = summarize(inFlight.sorted());
  const twoPutsUs = summarize(twoPuts.sorted());
  return {
    writersCount: o.writersCount,
    recordSizeBytes: o.recordSizeBytes,
    ...tp,
    flushBytes,
    forceFlushIdleUs,
    plainPutUs,
    idleRatio: forceFlushIdleUs.p50Us / plainPutUs.p50Us,
    idleStagesP50Ms,
    forceFlushInFlightUs,
    twoPutsUs,
    inFlightRatio: forceFlushInFlightUs.p50Us / twoPutsUs.p50Us,
  };
}

export function renderS3Bench(r: S3BenchResult): string {
  const ms = (us: number): string => (us / 1000).toFixed(1);
  const row = (name: string, s: LatencySummary): string => `  ${name.padEnd(34)} p50 ${ms(s.p50Us).padStart(7)} ms   p90 ${ms(s.p90Us).padStart(7)} ms   max ${ms(s.maxUs).padStart(7)} ms   (n=${s.count})`;
  return [
    `backup to S3, ${r.writersCount} writers, ${r.recordSizeBytes} B records`,
    `  backup throughput                  ${r.backupMBPerSec.toFixed(2)} MB/s   (WAL payload in the same window: ${r.walPayloadMBPerSec.toFixed(2)} MB/s, ${Math.round(r.walOpsPerSec)} appends/s)`,
    `forceFlush, idle (${r.flushBytes} B per flush)`,
    row('forceFlush (data object + checkpoint)', r.forceFlushIdleUs),
    row('baseline: one plain PUT, same bytes', r.plainPutUs),
    `  ratio p50                          ${r.idleRatio.toFixed(2)}x   (target <= 1.5x)`,
    `  stages p50: WAL read ${r.idleStagesP50Ms.readMs.toFixed(1)} ms, data PUT ${r.idleStagesP50Ms.writeMs.toFixed(1)} ms, checkpoint PUT ${r.idleStagesP50Ms.checkpointMs.toFixed(1)} ms`,
    'forceFlush, an upload in flight',
    row('forceFlush (barrier: waits, chains one)', r.forceFlushInFlightUs),
    row('baseline: two plain PUTs in a row', r.twoPutsUs),
    `  ratio p50                          ${r.inFlightRatio.toFixed(2)}x   (target <= 1.5x)`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { endpoint: { type: 'string' }, bucket: { type: 'string' }, prefix: { type: 'string' }, dir: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'string' } } });
  if (!values.endpoint || !values.bucket) {
    process.stderr.write('usage: node dist/bench/s3-backup.js --endpoint URL --bucket NAME [--prefix P] [--dir DIR] [--quick] [--json FILE]\n');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(values.dir ?? os.tmpdir(), 'fp-s3-bench-'));
  try {
    const quick = values.quick === true;
    const r = await runS3Bench(
      {
        s3: { endpoint: values.endpoint, bucket: values.bucket, ...(values.prefix ? { prefix: values.prefix } : {}), forcePathStyle: true },
        dir,
        writersCount: 64,
        recordSizeBytes: 256,
        warmupMs: quick ? 500 : 2000,
        windowMs: quick ? 3000 : 10_000,
        samplesCount: quick ? 10 : 30,
        flushRecordsCount: 4096,
      },
      (line) => process.stderr.write(`${line}\n`),
    );
    process.stdout.write(renderS3Bench(r) + '\n');
    if (values.json) fs.writeFileSync(values.json, JSON.stringify(r, null, 2));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === `file://${path.resolve(process.argv[1])}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
