#!/usr/bin/env node
/**
 * Where an idle forceFlush to S3 spends its time, beside a plain PUT of the same bytes, in one run:
 * every sample runs, in turn, a real forceFlush of FLUSH_RECORDS x 256 B records, then each of its
 * steps again by hand on the same range and bytes, then the requests the ratio is judged against.
 *
 *   node test/s3/run.mjs --exec node test/s3/profile-force-flush.mjs [ROOT] [SAMPLES] [FLUSH_RECORDS]
 *
 * ROOT: a checkout with a built dist/ (default .). Prints p50 / p90 in ms of:
 *   forceFlush          the sink's forceFlush (what the bench measures)
 *   walRead             wal.readRaw of the flush's range (page cache, as right after the commit)
 *   encode              encodeBackupFile: header and body CRC
 *   concatMd5           Buffer.concat of the chunks and MD5 of the body (Content-MD5)
 *   dataPut             PutObject If-None-Match: * with Content-MD5 (UNSIGNED-PAYLOAD), the sink's request
 *   dataPutNoMd5        the same without Content-MD5
 *   ckptPut             PutObject of 48 B with If-Match (the checkpoint's request)
 *   inlinePut           PutObject of 48 B + the flush's bytes with If-Match and Content-MD5, over the
 *                       same key every time (an inline checkpoint's request; concat and MD5 not timed)
 *   smallPut            a plain PutObject of 48 B
 *   plainPut            a plain PutObject of the flush's bytes (the bench's baseline)
 * and the ratios forceFlush / plainPut and (dataPut + ckptPut) / plainPut, the floor of "data, then a
 * conditional checkpoint" when reading, hashing and building cost nothing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { benchEnv } from './bench-env.mjs';

const [root = '.', samplesText = '30', recordsText = '4096'] = process.argv.slice(2);
const dist = (p) => import(path.resolve(root, 'dist', p));
const { BackupSink, Wal } = await dist('index.js');
const { S3Target } = await dist('backup/s3-target.js');
const { encodeBackupFile } = await dist('backup/backup-file.js');
const { BodyBuilder } = await dist('backup/format.js');
const { endpoint, credentials, bucket, counts, warmupCount, tag, tmp: dir } = benchEnv('fp-prof-', [samplesText, recordsText]);
const [samplesCount, recordsCount] = counts;
const wal = await Wal.open({ dir, segmentSizeBytes: 64 << 20 });
const s3 = { endpoint, bucket, prefix: `prof-${tag}`, credentials };
const sink = await BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 });
// A second target on the same endpoint for the hand-made requests (own keep-alive pool, as the bench's baseline).
const hand = new S3Target({ ...s3, prefix: `prof-${tag}-hand` });
const payload = crypto.randomBytes(256);
const times = {};
const add = (k, ms) => (times[k] ??= []).push(ms);
const timed = async (k, fn, keep) => {
  const t = performance.now();
  const r = await fn();
  if (keep) add(k, performance.now() - t);
  return r;
};
const md5 = (b) => crypto.createHash('md5').update(b).digest();
const send = (key, body, extra = {}) => hand.client.send(new PutObjectCommand({ Bucket: bucket, Key: `${hand.key(key)}`, Body: body, ContentLength: body.byteLength, ...extra }));
let ckptEtag = null;
let inlineEtag = null;
for (let i = 0; i < samplesCount + warmupCount; i++) {
  const keep = i >= warmupCount;
  const fromLsn = wal.lastLsn + 1;
  for (let r = 0; r < recordsCount; r++) wal.append(payload);
  await wal.sync();
  const toLsn = wal.lastLsn;
  await timed('forceFlush', () => sink.forceFlush(), keep);
  await sink.settled?.(); // an inline file stored under its name: not during the steps below
  const body = new BodyBuilder();
  await timed('walRead', async () => {
    for await (const span of wal.readRaw({ fromLsn, toLsn, chunkBytesMax: 4 << 20 })) body.add(span);
  }, keep);
  const file = await timed('encode', () => encodeBackupFile(body, 'none'), keep);
  const { bytes, digest } = await timed('concatMd5', async () => {
    const b = Buffer.concat(file.chunks);
    return { bytes: b, digest: md5(b) };
  }, keep);
  await timed('dataPut', () => send(`d-${i}`, bytes, { ContentMD5: digest.toString('base64'), IfNoneMatch: '*' }), keep);
  await timed('dataPutNoMd5', () => send(`n-${i}`, bytes, { IfNoneMatch: '*' }), keep);
  const ckpt = crypto.randomBytes(48);
  const r = await timed('ckptPut', () => send('CHECKPOINT', ckpt, { ContentMD5: md5(ckpt).toString('base64'), ...(ckptEtag === null ? { IfNoneMatch: '*' } : { IfMatch: ckptEtag }) }), keep);
  ckptEtag = r.ETag.replace(/"/g, '');
  const inlineBody = Buffer.concat([ckpt, bytes]);
  const ri = await timed('inlinePut', () => send('CHECKPOINT-INLINE', inlineBody, { ContentMD5: md5(inlineBody).toString('base64'), ...(inlineEtag === null ? { IfNoneMatch: '*' } : { IfMatch: inlineEtag }) }), keep);
  inlineEtag = ri.ETag.replace(/"/g, '');
  await timed('smallPut', () => send(`s-${i}`, crypto.randomBytes(48)), keep);
  const plainBody = crypto.randomBytes(bytes.byteLength);
  await timed('plainPut', () => send(`p-${i}`, plainBody), keep);
}
const at = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const r2 = (x) => Math.round(x * 100) / 100;
const out = {};
for (const [k, xs] of Object.entries(times)) out[k] = { p50: r2(at(xs, 0.5)), p90: r2(at(xs, 0.9)) };
// Per-sample sums, then their median: the floor as the same samples saw it.
const floor = times.dataPut.map((d, j) => (d + times.ckptPut[j]) / times.plainPut[j]);
const ratio = times.forceFlush.map((f, j) => f / times.plainPut[j]);
const inlineRatio = times.inlinePut.map((d, j) => d / times.plainPut[j]);
console.log(JSON.stringify({ root, inlinePutRatioP50: r2(at(inlineRatio, 0.5)), flushBytes: (recordsCount * 280) + 64, samples: samplesCount, ...out, ratioP50: r2(at(ratio, 0.5)), floorRatioP50: r2(at(floor, 0.5)), sinkStagesP50Ms: Object.fromEntries(Object.entries(sink.stats().stages).map(([k, v]) => [k, r2(v.p50Ms)])), flushes: sink.stats().flushes }));
await sink.close();
await wal.close();
await hand.close();
fs.rmSync(dir, { recursive: true, force: true });
