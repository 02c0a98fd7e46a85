#!/usr/bin/env node
/**
 * Idle forceFlush of two builds in ONE process, sample by sample: each round runs build A's forceFlush,
 * build B's, and a plain PutObject of the same bytes, in an order that rotates every round, so that the
 * machine's load (other work on a shared 2-core VM) falls on all three alike. Each build has its own WAL,
 * sink and prefix; the plain PUT is a bare PutObject of random bytes on its own client (the bench's
 * baseline). Prints p50 / p90 of each, their ratios to the plain PUT, and the per-round difference B - A
 * (median, and in how many rounds B was faster).
 *
 *   node test/s3/run.mjs --exec node test/s3/ab-interleaved.mjs ROOT_A ROOT_B [ROUNDS] [FLUSH_RECORDS] [idle|inflight]
 *
 * inflight: the bench's "forceFlush with an upload in flight" instead: each sample starts a forceFlush,
 * appends as many records again while it runs, and times a second forceFlush (it waits for the first,
 * then runs its own); the baseline is then two plain PutObjects one after the other.
 *
 * ROOT_A / ROOT_B: checkouts with a built dist/ (node_modules resolve from this repository).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { benchEnv, openBuild } from './bench-env.mjs';

const [rootA, rootB, roundsText = '60', recordsText = '4096', mode = 'idle'] = process.argv.slice(2);
if (mode !== 'idle' && mode !== 'inflight') throw new Error(`mode must be idle or inflight, got ${mode}`);
if (!rootA || !rootB) throw new Error('usage: ab-interleaved.mjs ROOT_A ROOT_B [ROUNDS] [FLUSH_RECORDS]');
const { endpoint, credentials, bucket, counts, warmupCount, tag, tmp } = benchEnv('fp-abi-', [roundsText, recordsText]);
const [roundsCount, recordsCount] = counts;
const payload = crypto.randomBytes(256);

async function side(label, root) {
  const { wal, sink, close } = await openBuild(root, path.join(tmp, label), { endpoint, bucket, prefix: `abi-${tag}-${label}`, credentials }, { flushIntervalMs: 3_600_000 });
  const ms = [];
  let bytes = 0;
  return {
    label,
    ms,
    get bytes() {
      return bytes;
    },
    async sample(keep) {
      for (let r = 0; r < recordsCount; r++) wal.append(payload);
      await wal.sync();
      const before = sink.stats().bytesWritten;
      let running = null;
      if (mode === 'inflight') {
        running = sink.forceFlush();
        for (let r = 0; r < recordsCount; r++) wal.append(payload);
        await wal.sync();
      }
      const t = performance.now();
      await sink.forceFlush();
      if (keep) ms.push(performance.now() - t);
      await running;
      bytes = (sink.stats().bytesWritten - before) / (mode === 'inflight' ? 2 : 1);
      // A build that stores an inline file under its name after the flush: not during the next sample.
      await sink.settled?.();
    },
    close,
  };
}

const a = await side('A', rootA);
const b = await side('B', rootB);
const plain = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const putMs = [];
let seq = 0;
const put = {
  async sample(keep) {
    const body = crypto.randomBytes(a.bytes || 1);
    const t = performance.now();
    for (let n = mode === 'inflight' ? 2 : 1; n > 0; n--) await plain.send(new PutObjectCommand({ Bucket: bucket, Key: `abi-${tag}-plain/${seq++}`, Body: body, ContentLength: body.byteLength }));
    if (keep) putMs.push(performance.now() - t);
  },
};
const orders = [
  [a, b, put],
  [b, put, a],
  [put, a, b],
  [b, a, put],
  [a, put, b],
  [put, b, a],
];
for (let i = 0; i < roundsCount + warmupCount; i++) {
  for (const s of orders[i % orders.length]) await s.sample(i >= warmupCount);
}
const at = (xs, q) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const r2 = (x) => Math.round(x * 100) / 100;
const diff = b.ms.map((x, i) => x - a.ms[i]);
console.log(
  JSON.stringify({
    A: rootA,
    B: rootB,
    mode,
    rounds: roundsCount,
    flushBytes: a.bytes,
    aP50Ms: r2(at(a.ms, 0.5)),
    bP50Ms: r2(at(b.ms, 0.5)),
    plainPutP50Ms: r2(at(putMs, 0.5)),
    aP90Ms: r2(at(a.ms, 0.9)),
    bP90Ms: r2(at(b.ms, 0.9)),
    plainPutP90Ms: r2(at(putMs, 0.9)),
    aRatioP50: r2(at(a.ms, 0.5) / at(putMs, 0.5)),
    bRatioP50: r2(at(b.ms, 0.5) / at(putMs, 0.5)),
    bMinusAP50Ms: r2(at(diff, 0.5)),
    bFasterRounds: diff.filter((d) => d < 0).length,
  }),
);
await a.close();
await b.close();
plain.destroy();
fs.rmSync(tmp, { recursive: true, force: true });
