/**
 * The S3 target against a real radosgw: put/get/list/delete, "already there" resolved by checksums,
 * multipart (RGW's empty ETag on completion), conditional checkpoints (BACKUP_LOCKED), and a request that
 * timed out client-side but landed later (radosgw SIGSTOPped, then resumed).
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFlushpointError } from '../../core/errors.js';
import { S3Target, multipartEtag } from '../../backup/s3-target.js';
import { cluster, newBucket, rawClient, targetOptions, until } from './cluster.js';

const c = cluster();
let bucket = '';
const raw = rawClient(c);

beforeAll(async () => {
  bucket = await newBucket(c, 'target');
});
afterAll(() => raw.destroy());

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function objectBytes(key: string): Promise<Uint8Array | null> {
  try {
    const r = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await r.Body!.transformToByteArray();
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return null;
    throw err;
  }
}

describe('S3Target against radosgw', () => {
  it('puts, lists, gets and deletes files under its prefix only', async () => {
    const t = new S3Target(targetOptions(c, bucket, 'basic/a'));
    await t.prepare();
    const other = new S3Target(targetOptions(c, bucket, 'basic/ab'));
    await other.prepare();
    const a = randomBytes(1000);
    await t.putFile('one.fpb', [a.subarray(0, 10), a.subarray(10)]);
    await other.putFile('x.fpb', [randomBytes(5)]);
    expect(await t.listFiles()).toEqual(['one.fpb']);
    expect(sha((await t.getFile("one.fpb"))!)).toBe(sha(a));
    expect(sha((await objectBytes('basic/a/one.fpb'))!)).toBe(sha(a));
    expect(await t.getFile('missing.fpb')).toBeNull();
    await t.deleteFiles(['one.fpb', 'never-there.fpb']);
    expect(await t.listFiles()).toEqual([]);
    expect(await other.listFiles()).toEqual(['x.fpb']);
    expect(t.location).toBe(`s3://${bucket}/basic/a`);
    await t.close();
    await other.close();
  });

  it('a second put of the same bytes finds them already there; other bytes are refused with BACKUP_LOCKED and not overwritten', async () => {
    const t = new S3Target(targetOptions(c, bucket, 'again'));
    await t.prepare();
    const a = randomBytes(4096);
    await t.putFile('f.fpb', [a]);
    await t.putFile('f.fpb', [a]);
    expect(t.stats()).toMatchObject({ filesPut: 2, alreadyThere: 1 });
    const b = Buffer.from(a);
    b.writeUInt8(b.readUInt8(100) ^ 1, 100);
    const err = await t.putFile('f.fpb', [b]).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
    expect((err as Error).message).toContain(`s3://${bucket}/again/f.fpb`);
    expect(sha((await objectBytes('again/f.fpb'))!)).toBe(sha(a));
    await t.close();
  });

  it('the same bytes stored by a multipart upload (another part size) count as already there, compared by SHA-256', async () => {
    const mib = 1024 * 1024;
    const body = randomBytes(11 * mib);
    const big = new S3Target(targetOptions(c, bucket, 'mp', { multipartThresholdBytes: 5 * mib, partSizeBytes: 5 * mib }));
    await big.prepare();
    await big.putFile('big.fpb', [body]);
    expect(big.stats().multipartUploads).toBe(1);
    // RGW's CompleteMultipartUpload ETag is empty; HEAD gives the real one, which the target checked.
    const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'mp/big.fpb' }));
    expect(head.ETag?.replace(/"/g, '')).toBe(multipartEtag(body, 5 * mib));
    expect(sha((await big.getFile('big.fpb'))!)).toBe(sha(body));
    // Same bytes, other part size: the ETag differs, the bytes do not.
    const other = new S3Target(targetOptions(c, bucket, 'mp', { multipartThresholdBytes: 6 * mib, partSizeBytes: 6 * mib }));
    await other.prepare();
    await other.putFile('big.fpb', [body]);
    expect(other.stats()).toMatchObject({ alreadyThere: 1, multipartUploads: 0 });
    // And a single PUT of the same bytes (threshold above the size) too.
    const single = new S3Target(targetOptions(c, bucket, 'mp', { multipartThresholdBytes: 64 * mib }));
    await single.prepare();
    await single.putFile('big.fpb', [body]);
    expect(single.stats().alreadyThere).toBe(1);
    for (const t of [big, other, single]) await t.close();
  });

  it('checkpoints are conditional: of two targets on one prefix, the one publishing on a stale version gets BACKUP_LOCKED', async () => {
    const a = new S3Target(targetOptions(c, bucket, 'ckpt'));
    const b = new S3Target(targetOptions(c, bucket, 'ckpt'));
    await a.prepare();
    await b.prepare(); // both saw "no checkpoint"
    await a.publishCheckpoint(Buffer.from('a1'));
    const err = await b.publishCheckpoint(Buffer.from('b1')).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
    await a.publishCheckpoint(Buffer.from('a2'));
    expect(Buffer.from((await objectBytes('ckpt/CHECKPOINT'))!).toString()).toBe('a2');
    // A third opens now (sees a2), then a publishes a3: the third's publish on a2 is refused.
    const c3 = new S3Target(targetOptions(c, bucket, 'ckpt'));
    await c3.prepare();
    await a.publishCheckpoint(Buffer.from('a3'));
    const err3 = await c3.publishCheckpoint(Buffer.from('c1')).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(err3, 'BACKUP_LOCKED')).toBe(true);
    expect(Buffer.from((await objectBytes('ckpt/CHECKPOINT'))!).toString()).toBe('a3');
    expect(a.stats().checkpointsPublished).toBe(3);
    for (const t of [a, b, c3]) await t.close();
  });

  it('20 targets racing for the first checkpoint: exactly one wins', async () => {
    const ts = Array.from({ length: 20 }, () => new S3Target(targetOptions(c, bucket, 'race')));
    for (const t of ts) await t.prepare();
    const results = await Promise.allSettled(ts.map((t, i) => t.publishCheckpoint(Buffer.from(`t${i}`))));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(isFlushpointError(r.reason, 'BACKUP_LOCKED')).toBe(true);
    expect(Buffer.from((await objectBytes('race/CHECKPOINT'))!).toString()).toBe(`t${won[0]}`);
    for (const t of ts) await t.close();
  });

  it('a checkpoint PUT that timed out but landed later is recognised as its own: the next publish goes on from it', async () => {
    const t = new S3Target(targetOptions(c, bucket, 'late', { requestTimeoutMs: 500, attemptsCountMax: 1 }));
    await t.prepare();
    await t.publishCheckpoint(Buffer.from('v1'));
    // The first If-Match teaches the target radosgw's spelling (bare ETag); the stalled one then uses it.
    await t.publishCheckpoint(Buffer.from('v1b'));
    c.pauseRgw();
    let err: unknown;
    try {
      err = await t.publishCheckpoint(Buffer.from('v2')).then(() => null, (e: unknown) => e);
    } finally {
      c.resumeRgw();
    }
    expect((err as Error)?.name).toBe('TimeoutError');
    // The stalled request is in radosgw's socket: it lands once radosgw runs again.
    await until(async () => Buffer.from((await objectBytes('late/CHECKPOINT')) ?? []).toString() === 'v2');
    await t.publishCheckpoint(Buffer.from('v3'));
    expect(t.stats().checkpointSelfConflicts).toBe(1);
    expect(Buffer.from((await objectBytes('late/CHECKPOINT'))!).toString()).toBe('v3');
    // Someone else's write is still refused afterwards.
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'late/CHECKPOINT', Body: Buffer.from('intruder') }));
    const e2 = await t.publishCheckpoint(Buffer.from('v4')).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(e2, 'BACKUP_LOCKED')).toBe(true);
    await t.close();
  });

  it('a data PUT that timed out but landed later is found already there on retry (never overwritten blindly)', async () => {
    const t = new S3Target(targetOptions(c, bucket, 'late-data', { requestTimeoutMs: 500, attemptsCountMax: 1 }));
    await t.prepare();
    const a = randomBytes(64 * 1024);
    c.pauseRgw();
    let err: unknown;
    try {
      err = await t.putFile('d.fpb', [a]).then(() => null, (e: unknown) => e);
    } finally {
      c.resumeRgw();
    }
    expect((err as Error)?.name).toBe('TimeoutError');
    await until(async () => (await objectBytes('late-data/d.fpb')) !== null);
    await t.putFile('d.fpb', [a]);
    expect(t.stats().alreadyThere).toBe(1);
    expect(sha((await objectBytes('late-data/d.fpb'))!)).toBe(sha(a));
    await t.close();
  });
});
