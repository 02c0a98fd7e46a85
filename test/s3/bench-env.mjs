/**
 * What the S3 measuring scripts (ab-interleaved.mjs, ab-throughput.mjs, profile-force-flush.mjs) share: the endpoint and
 * keys that test/s3/run.mjs --exec puts in the environment, the bucket, a random tag for their prefixes,
 * a temp directory for their WALs, and their numeric arguments.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `counts`: the numeric arguments, as strings (argv) with their defaults. */
export function benchEnv(tmpPrefix, counts) {
  return {
    endpoint: process.env.FLUSHPOINT_S3_ENDPOINT,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
    bucket: 'flushpoint-bench',
    counts: counts.map(Number),
    warmupCount: 3,
    tag: crypto.randomBytes(4).toString('hex'),
    tmp: fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix)),
  };
}

/**
 * One build's WAL (under `dir`) and its sink to `s3` (endpoint, bucket, prefix, credentials), loaded from
 * that build's dist/ under `root`: what the two-build scripts (ab-interleaved.mjs, ab-throughput.mjs) run
 * side by side. close() closes the sink, then the WAL.
 */
export async function openBuild(root, dir, s3, sinkOptions) {
  const { BackupSink, Wal } = await import(path.resolve(root, 'dist/index.js'));
  const wal = await Wal.open({ dir, segmentSizeBytes: 64 << 20 });
  const sink = await BackupSink.open({ wal, target: { s3 }, ...sinkOptions });
  return {
    wal,
    sink,
    async close() {
      await sink.close();
      await wal.close();
    },
  };
}
