#!/usr/bin/env node
/**
 * Idle forceFlush to S3 beside a bare PutObject of the same bytes, for A/B runs of two builds: run it
 * alternately with the dist/ of each build (same cluster, same bucket), several rounds.
 *
 *   node test/s3/run.mjs --exec sh -c 'for i in 1 2 3 4 5; do \
 *     node test/s3/ab-force-flush.mjs /path/to/old-checkout old 30; node test/s3/ab-force-flush.mjs . new 30; done'
 *
 * ROOT is a checkout with a built dist/ (its node_modules resolve from there); LABEL names the line;
 * SAMPLES forceFlushes of 4096 x 256 B records (1.1 MB), each followed by a bare PutObject of as many
 * random bytes on a plain client. Prints one JSON line: p50/p99 of both, their ratios, and the sink's
 * stage p50s (WAL read, data PUT, checkpoint PUT). Needs FLUSHPOINT_S3_ENDPOINT and the AWS_* keys
 * (run.mjs --exec sets them) and the bucket flushpoint-bench.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const [root = '.', label = 'build', samplesText = '20'] = process.argv.slice(2);
const { BackupSink, Wal } = await import(path.resolve(root, 'dist/index.js'));
const endpoint = process.env.FLUSHPOINT_S3_ENDPOINT;
const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY };
const bucket = 'flushpoint-bench';
const warmupCount = 3;
const samplesCount = Number(samplesText);
const plain = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-ab-'));
const wal = await Wal.open({ dir, segmentSizeBytes: 64 << 20 });
const prefix = `ab-${label}-${crypto.randomBytes(4).toString('hex')}`;
const sink = await BackupSink.open({ wal, target: { s3: { endpoint, bucket, prefix, credentials } }, flushIntervalMs: 3_600_000 });
const payload = crypto.randomBytes(256);
const flushMs = [];
const putMs = [];
for (let i = 0; i < samplesCount + warmupCount; i++) {
  for (let r = 0; r < 4096; r++) wal.append(payload);
  await wal.sync();
  const before = sink.stats().bytesWritten;
  let t = performance.now();
  await sink.forceFlush();
  const f = performance.now() - t;
  const body = crypto.randomBytes(sink.stats().bytesWritten - before);
  t = performance.now();
  await plain.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}-plain/${i}`, Body: body, ContentLength: body.byteLength }));
  const p = performance.now() - t;
  if (i >= warmupCount) {
    flushMs.push(f);
    putMs.push(p);
  }
}
const at = (samples, q) => [...samples].sort((a, b) => a - b)[Math.min(samples.length - 1, Math.floor(q * samples.length))];
const st = sink.stats().stages;
const round2 = (x) => Math.round(x * 100) / 100;
console.log(
  JSON.stringify({
    label,
    forceFlushP50Ms: round2(at(flushMs, 0.5)),
    forceFlushP99Ms: round2(at(flushMs, 0.99)),
    plainPutP50Ms: round2(at(putMs, 0.5)),
    plainPutP99Ms: round2(at(putMs, 0.99)),
    ratioP50: round2(at(flushMs, 0.5) / at(putMs, 0.5)),
    ratioP99: round2(at(flushMs, 0.99) / at(putMs, 0.99)),
    stagesP50Ms: { read: round2(st.readMs.p50Ms), dataPut: round2(st.writeMs.p50Ms), checkpointPut: round2(st.checkpointMs.p50Ms) },
  }),
);
await sink.close();
await wal.close();
plain.destroy();
fs.rmSync(dir, { recursive: true, force: true });
