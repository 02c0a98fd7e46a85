/**
 * restoreBackup and verifyBackup reading a bucket (through S3Target.readFs): the restored WAL equals the
 * original byte for byte, point in time works, and damaged or missing objects are named by their s3:// path.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFlushpointError } from '../../core/errors.js';
import { nodeFileSystem } from '../../fs/node-file-system.js';
import { restoreBackup } from '../../backup/restore.js';
import { verifyBackup } from '../../backup/verify.js';
import { S3Target } from '../../backup/s3-target.js';
import { cluster, newBucket, rawClient, targetOptions } from './cluster.js';
import { backupToS3, walRecords } from './sink-fixtures.js';

const c = cluster();
const raw = rawClient(c);
let bucket = '';
let tmp = '';

beforeAll(async () => {
  bucket = await newBucket(c, 'restore');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'fp-s3-restore-'));
});
afterAll(() => {
  raw.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

describe('restore and verify from a bucket', () => {
  it('a backup in the bucket verifies, and restores to a WAL equal to the original record for record, byte for byte; point in time too', async () => {
    const { walDir, lastLsn, files } = await backupToS3(c, bucket, 'full', path.join(tmp, 'full'), { records: 400, perFlush: 50 });
    expect(files).toBeGreaterThanOrEqual(8);
    const target = new S3Target(targetOptions(c, bucket, 'full'));
    const v = await verifyBackup(target.location, { fs: target.readFs });
    expect(v).toMatchObject({ ok: true, firstLsn: 1, lastLsn, checkpointLsn: lastLsn, records: lastLsn, problems: [] });
    const to = path.join(tmp, 'full-restored');
    const r = await restoreBackup({ from: target.location, to, fs: target.readFs });
    expect(r).toMatchObject({ lastLsn, records: lastLsn });
    expect(await walRecords(to)).toEqual(await walRecords(walDir));
    const pit = path.join(tmp, 'full-pit');
    await restoreBackup({ from: target.location, to: pit, fs: target.readFs, untilLsn: 123 });
    const want = (await walRecords(walDir)).slice(0, 123);
    expect(await walRecords(pit)).toEqual(want);
    await target.close();
  });

  it('a damaged object and a missing object are named by their s3:// path; restore refuses with BACKUP_CORRUPT / BACKUP_GAP', async () => {
    await backupToS3(c, bucket, 'bad', path.join(tmp, 'bad'), { records: 300, perFlush: 100 });
    const target = new S3Target(targetOptions(c, bucket, 'bad'));
    const names = (await target.listFiles()).filter((n) => n.endsWith('.fpb')).sort();
    expect(names.length).toBeGreaterThanOrEqual(3);
    const [first, second] = names as [string, string];
    // Flip one byte in the body of the first object, delete the second.
    const got = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `bad/${first}` }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    bytes.writeUInt8(bytes.readUInt8(200) ^ 0x10, 200);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `bad/${first}`, Body: bytes }));
    await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: `bad/${second}` }));
    const v = await verifyBackup(target.location, { fs: target.readFs });
    expect(v.ok).toBe(false);
    const corrupt = v.problems.find((p) => p.code === 'BACKUP_CORRUPT');
    expect(corrupt?.file).toBe(`${target.location}/${first}`);
    const gap = v.problems.find((p) => p.code === 'BACKUP_GAP');
    expect(gap?.message).toContain('missing');
    const firstLsnOfSecond = Number.parseInt(second.slice(0, 16), 16);
    expect(gap?.lsn).toBe(firstLsnOfSecond);
    const err = await restoreBackup({ from: target.location, to: path.join(tmp, 'bad-restored'), fs: target.readFs }).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(err, 'BACKUP_CORRUPT')).toBe(true);
    expect((err as Error).message).toContain(`${target.location}/${first}`);
    // Nothing was left at the restore target.
    expect(await nodeFileSystem.stat(path.join(tmp, 'bad-restored')).then(() => true, () => false)).toBe(false);
    await target.close();
  });

  it('an empty prefix is BACKUP_NOT_FOUND, and so is a bucket that does not exist', async () => {
    const t = new S3Target(targetOptions(c, bucket, 'nothing-here'));
    const e1 = await restoreBackup({ from: t.location, to: path.join(tmp, 'nf'), fs: t.readFs }).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(e1, 'BACKUP_NOT_FOUND')).toBe(true);
    const t2 = new S3Target(targetOptions(c, 'no-such-bucket-fp', 'x'));
    const e2 = await verifyBackup(t2.location, { fs: t2.readFs }).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(e2, 'BACKUP_NOT_FOUND')).toBe(true);
    await t.close();
    await t2.close();
  });
});

