#!/usr/bin/env node
/**
 * The S3 bench's "backup throughput while 64 writers load the WAL" for two builds in ONE process, window
 * by window: each round runs build A's load window and build B's, in an order that alternates every
 * round, so that the machine's load (other work on a shared 2-core VM) falls on both alike. Each build has
 * its own WAL and sink (a flush every 200 ms, as the bench's) and prefix. Prints per build the median of
 * the backup MB/s and the WAL payload MB/s over the rounds, and the median per-round ratio B / A.
 *
 *   node test/s3/run.mjs --exec node test/s3/ab-throughput.mjs ROOT_A ROOT_B [ROUNDS] [WINDOW_MS]
 *
 * ROOT_A / ROOT_B: checkouts with a built dist/ (node_modules resolve from this repository).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { benchEnv, openBuild } from './bench-env.mjs';

const [rootA, rootB, roundsText = '8', windowText = '2000'] = process.argv.slice(2);
if (!rootA || !rootB) throw new Error('usage: ab-throughput.mjs ROOT_A ROOT_B [ROUNDS] [WINDOW_MS]');
const { endpoint, credentials, bucket, counts, tag, tmp } = benchEnv('fp-abt-', [roundsText, windowText]);
const [roundsCount, windowMs] = counts;
const writersCount = 64;
const payload = crypto.randomBytes(256);
const MB = 1024 * 1024;

async function side(label, root) {
  const { wal, sink, close } = await openBuild(root, path.join(tmp, label), { endpoint, bucket, prefix: `abt-${tag}-${label}`, credentials }, { flushIntervalMs: 200 });
  const backupMBps = [];
  const walMBps = [];
  return {
    label,
    backupMBps,
    walMBps,
    async window(keep) {
      let stop = false;
      let ops = 0;
      const writer = async () => {
        while (!stop) {
          await wal.waitDurable(wal.append(payload));
          ops++;
        }
      };
      const bytes0 = sink.stats().bytesWritten;
      const t0 = performance.now();
      const writers = Array.from({ length: writersCount }, writer);
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      const seconds = (performance.now() - t0) / 1000;
      const bytes1 = sink.stats().bytesWritten;
      stop = true;
      await Promise.all(writers);
      if (keep) {
        backupMBps.push((bytes1 - bytes0) / MB / seconds);
        walMBps.push((ops * payload.byteLength) / MB / seconds);
      }
      // Caught up before the other build's window: its flushes would load the same radosgw.
      await sink.forceFlush();
      await sink.settled?.();
    },
    close,
  };
}

const a = await side('A', rootA);
const b = await side('B', rootB);
for (let i = 0; i < roundsCount + 1; i++) {
  for (const s of i % 2 === 0 ? [a, b] : [b, a]) await s.window(i >= 1);
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const r2 = (x) => Math.round(x * 100) / 100;
console.log(
  JSON.stringify({
    A: rootA,
    B: rootB,
    rounds: roundsCount,
    windowMs,
    aBackupMBps: r2(median(a.backupMBps)),
    bBackupMBps: r2(median(b.backupMBps)),
    aWalMBps: r2(median(a.walMBps)),
    bWalMBps: r2(median(b.walMBps)),
    bOverABackupP50: r2(median(b.backupMBps.map((x, i) => x / a.backupMBps[i]))),
    bOverAWalP50: r2(median(b.walMBps.map((x, i) => x / a.walMBps[i]))),
    bHigherBackupRounds: b.backupMBps.filter((x, i) => x > a.backupMBps[i]).length,
  }),
);
await a.close();
await b.close();
fs.rmSync(tmp, { recursive: true, force: true });
