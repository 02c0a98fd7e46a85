/**
 * The S3 target's decisions against an in-process S3 look-alike (test/s3/fake-s3.ts), in `npm test`
 * without Ceph: request timeouts that really fire, "already there" by checksum after a write that timed
 * out but landed, other bytes never overwritten, conditional checkpoints, our own late checkpoint
 * recognised, and radosgw 16's bare-ETag If-Match. The same behaviours run against the real radosgw in
 * test/s3/s3-target.s3.ts (npm run test:s3).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkpointBytes } from '../../backup/backup-file.js';
import { backupFileName, decodeCheckpoint } from '../../backup/format.js';
import { S3Target } from '../../backup/s3-target.js';
import type { S3TargetOptions } from '../../backup/s3-options.js';
import { isFlushpointError } from '../../core/errors.js';
import { FakeS3 } from './fake-s3.js';
import { until } from './cluster.js';

let fake: FakeS3;
const BUCKET = 'fake-bucket';
const targets: S3Target[] = [];

beforeAll(async () => {
  fake = await FakeS3.start();
});
afterEach(async () => {
  fake.release();
  fake.bareIfMatchOnly = false;
  for (const t of targets.splice(0)) await t.close();
  fake.buckets.set(BUCKET, new Map());
});
afterAll(() => fake.close());

async function target(prefix: string, extra: Partial<S3TargetOptions> = {}): Promise<S3Target> {
  if (!fake.buckets.has(BUCKET)) fake.buckets.set(BUCKET, new Map());
  const t = new S3Target({ endpoint: fake.endpoint, bucket: BUCKET, prefix, credentials: { accessKeyId: 'k', secretAccessKey: 's' }, attemptsCountMax: 1, ...extra });
  targets.push(t);
  await t.prepare();
  return t;
}

const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);

describe('S3Target decisions (in-process S3 look-alike)', () => {
  it('a stalled store makes a request fail with TimeoutError (the SDK has no timeout of its own)', async () => {
    const t = await target('stall', { requestTimeoutMs: 200 });
    fake.stall();
    const err = await failure(t.putFile('a.fpb', [Buffer.from('x')]));
    expect((err as Error).name).toBe('TimeoutError');
  });

  it('a data PUT that timed out but landed later is found already there by checksum on retry', async () => {
    const t = await target('late', { requestTimeoutMs: 200 });
    const bytes = randomBytes(2000);
    fake.stall();
    expect((await failure(t.putFile('d.fpb', [bytes])) as Error).name).toBe('TimeoutError');
    fake.release();
    while (fake.object(BUCKET, 'late/d.fpb') === undefined) await new Promise((r) => setTimeout(r, 10));
    await t.putFile('d.fpb', [bytes]);
    expect(t.stats()).toMatchObject({ filesPut: 1, alreadyThere: 1 });
    expect(fake.requests.filter((r) => r.startsWith('PUT late/d.fpb'))).toHaveLength(2); // never a third, unconditional one
  });

  it('other bytes under the name are BACKUP_LOCKED and stay as they were', async () => {
    const t = await target('other');
    fake.put(BUCKET, 'other/f.fpb', Buffer.from('someone else'));
    const err = await failure(t.putFile('f.fpb', [Buffer.from('mine')]));
    expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
    expect(fake.object(BUCKET, 'other/f.fpb')!.bytes.toString()).toBe('someone else');
  });

  it('checkpoints: If-None-Match first, If-Match after; a stale writer gets BACKUP_LOCKED', async () => {
    const a = await target('ck');
    const b = await target('ck');
    await a.publishCheckpoint(Buffer.from('a1'));
    await a.publishCheckpoint(Buffer.from('a2'));
    expect(fake.requests.filter((r) => r.startsWith('PUT ck/CHECKPOINT'))).toEqual(['PUT ck/CHECKPOINT if-none-match', 'PUT ck/CHECKPOINT if-match']);
    expect(isFlushpointError(await failure(b.publishCheckpoint(Buffer.from('b1'))), 'BACKUP_LOCKED')).toBe(true);
    expect(fake.object(BUCKET, 'ck/CHECKPOINT')!.bytes.toString()).toBe('a2');
  });

  it('a store that matches If-Match only against the bare ETag (radosgw 16): the target falls back to it once', async () => {
    fake.bareIfMatchOnly = true;
    const a = await target('bare');
    await a.publishCheckpoint(Buffer.from('v1'));
    await a.publishCheckpoint(Buffer.from('v2'));
    await a.publishCheckpoint(Buffer.from('v3'));
    expect(fake.object(BUCKET, 'bare/CHECKPOINT')!.bytes.toString()).toBe('v3');
    // v2: quoted (refused although the ETag is the one held), then bare; v3: bare at once.
    expect(fake.requests.filter((r) => r.startsWith('PUT bare/CHECKPOINT'))).toHaveLength(4);
    const intruder = await target('bare');
    await intruder.publishCheckpoint(Buffer.from('x1')); // learns the bare form itself, then wins the prefix
    expect(isFlushpointError(await failure(a.publishCheckpoint(Buffer.from('v4'))), 'BACKUP_LOCKED')).toBe(true);
  });

  it('our own checkpoint PUT that timed out but landed later is recognised; the next publish continues from it', async () => {
    const t = await target('self', { requestTimeoutMs: 200 });
    await t.publishCheckpoint(Buffer.from('v1'));
    fake.stall();
    expect((await failure(t.publishCheckpoint(Buffer.from('v2'))) as Error).name).toBe('TimeoutError');
    fake.release();
    while (fake.object(BUCKET, 'self/CHECKPOINT')?.bytes.toString() !== 'v2') await new Promise((r) => setTimeout(r, 10));
    await t.publishCheckpoint(Buffer.from('v3'));
    expect(t.stats().checkpointSelfConflicts).toBe(1);
    expect(fake.object(BUCKET, 'self/CHECKPOINT')!.bytes.toString()).toBe('v3');
  });

  it('a large data object and the checkpoint go in one round trip each on one kept-alive connection: no Expect: 100-continue, Content-MD5, no payload hash to compute', async () => {
    const t = await target('wire');
    fake.seen.length = 0;
    const body = randomBytes(3 * 1024 * 1024); // above the SDK's 2 MiB Expect: 100-continue threshold
    await t.putFile('0000000000000001-0000000000000010.fpb', [body.subarray(0, 1000), body.subarray(1000)]);
    await t.publishCheckpoint(Buffer.from('cp'));
    const puts = fake.seen.filter((r) => r.method === 'PUT');
    expect(puts.map((r) => r.key)).toEqual(['wire/0000000000000001-0000000000000010.fpb', 'wire/CHECKPOINT']);
    for (const r of puts) {
      expect(r.headers.expect, `${r.key}: Expect`).toBeUndefined();
      expect(r.headers['content-md5'], `${r.key}: Content-MD5`).toEqual(expect.any(String));
      expect(r.headers['x-amz-content-sha256'], `${r.key}: signed payload hash`).toBe('UNSIGNED-PAYLOAD');
    }
    // The SDK sends an Expect: 100-continue request on a new connection that is not kept alive.
    expect(new Set(puts.map((r) => r.clientPort)).size).toBe(1);
    expect(fake.object(BUCKET, 'wire/0000000000000001-0000000000000010.fpb')!.bytes.equals(body)).toBe(true);
  });

  describe("a killed writer's checkpoint PUT that lands after a new sink read the prefix", () => {
    const file = (first: number, last: number): string => backupFileName(first, last);
    /** Writer A: data 1..10 and its checkpoint, data 11..20, then its checkpoint 20 is held at the store and A dies (times out). */
    async function killedWriterA(prefix: string): Promise<void> {
      const a = await target(prefix, { requestTimeoutMs: 200 });
      await a.putFile(file(1, 10), [Buffer.from('one to ten')]);
      await a.publishCheckpoint(checkpointBytes(10, 1));
      await a.putFile(file(11, 20), [Buffer.from('eleven to twenty')]);
      fake.holdWhere((method, key) => method === 'PUT' && key === `${prefix}/CHECKPOINT`);
      expect(await failure(a.publishCheckpoint(checkpointBytes(20, 1)))).toMatchObject({ name: 'TimeoutError' });
    }

    it('is taken over when it names only files the new writer saw or put: no BACKUP_LOCKED', async () => {
      await killedWriterA('late');
      const b = await target('late'); // reads checkpoint 10 and the files 1..10, 11..20
      fake.release(); // A's checkpoint 20 lands now
      await b.putFile(file(21, 25), [Buffer.from('twenty-one to twenty-five')]);
      await b.publishCheckpoint(checkpointBytes(25, 1));
      expect(b.stats().checkpointTakeovers).toBe(1);
      const stored = decodeCheckpoint(fake.object(BUCKET, 'late/CHECKPOINT')!.bytes);
      expect(stored.ok && stored.value.checkpointLsn).toBe(25);
    });

    it('stays BACKUP_LOCKED when that writer put a file the new one never saw (it is alive and writing)', async () => {
      await killedWriterA('alive');
      const b = await target('alive');
      fake.release();
      fake.put(BUCKET, `alive/${file(21, 22)}`, Buffer.from('a file of the other writer'));
      await b.putFile(file(21, 25), [Buffer.from('twenty-one to twenty-five')]);
      const err = await failure(b.publishCheckpoint(checkpointBytes(25, 1)));
      expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
      expect(b.stats().checkpointTakeovers).toBe(0);
      const stored = decodeCheckpoint(fake.object(BUCKET, 'alive/CHECKPOINT')!.bytes);
      expect(stored.ok && stored.value.checkpointLsn).toBe(20);
    });

    it('stays BACKUP_LOCKED when a writer that took the prefix over removed the files the late one would name', async () => {
      const a = await target('gone');
      await a.putFile(file(1, 20), [Buffer.from('one to twenty')]);
      const b = await target('gone'); // another history: claims the prefix, then removes A's file
      await b.publishCheckpoint(checkpointBytes(0, 1));
      await b.deleteFiles([file(1, 20)]);
      const err = await failure(a.publishCheckpoint(checkpointBytes(20, 1)));
      expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
      expect(a.stats().checkpointTakeovers).toBe(0);
    });

    it('stays BACKUP_LOCKED when it names LSNs beyond what the new writer publishes', async () => {
      await killedWriterA('ahead');
      const b = await target('ahead');
      fake.release();
      const err = await failure(b.publishCheckpoint(checkpointBytes(15, 1)));
      expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
    });
  });

  describe('a checkpoint prepared while the last data file uploads', () => {
    const checkpointPuts = (): number => fake.seen.filter((r) => r.method === 'PUT' && r.key.endsWith('/CHECKPOINT')).length;

    it('reaches the store only when published, after the data PUT was answered', async () => {
      const t = await target('prep');
      fake.seen.length = 0;
      const prepared = t.prepareCheckpoint(checkpointBytes(10, 1));
      fake.holdWhere((method, key) => method === 'PUT' && key.endsWith('.fpb'));
      const put = t.putFile(backupFileName(1, 10), [Buffer.from('one to ten')]);
      await until(async () => fake.seen.some((r) => r.key.endsWith('.fpb')), 'the data PUT at the store');
      await t.listFiles(); // a later request is served meanwhile; the prepared one stays unsent
      expect(checkpointPuts()).toBe(0);
      fake.release();
      await put;
      expect(checkpointPuts()).toBe(0);
      await prepared.publish();
      expect(fake.seen.filter((r) => r.method === 'PUT').map((r) => r.key)).toEqual([`prep/${backupFileName(1, 10)}`, 'prep/CHECKPOINT']);
      const stored = decodeCheckpoint(fake.object(BUCKET, 'prep/CHECKPOINT')!.bytes);
      expect(stored.ok && stored.value.checkpointLsn).toBe(10);
    });

    it('is never sent when the flush fails first (cancel), and a refused one is BACKUP_LOCKED as ever', async () => {
      const t = await target('prep-cancel');
      fake.seen.length = 0;
      t.prepareCheckpoint(checkpointBytes(10, 1)).cancel();
      await t.listFiles();
      await new Promise((resolve) => setImmediate(resolve));
      await t.listFiles();
      expect(checkpointPuts()).toBe(0);
      fake.put(BUCKET, 'prep-cancel/CHECKPOINT', Buffer.from(checkpointBytes(5, 1))); // another writer's, since prepare()
      const err = await failure(t.prepareCheckpoint(checkpointBytes(10, 1)).publish());
      expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
      expect(checkpointPuts()).toBe(1);
    });
  });
});
