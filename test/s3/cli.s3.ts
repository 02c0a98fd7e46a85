/** The CLI on a backup in the bucket: `flushpoint backup verify|restore s3://bucket/prefix --endpoint URL` (dist/ built by test:s3). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, newBucket, rawClient } from './cluster.js';
import { backupToS3, walRecords } from './sink-fixtures.js';

const c = cluster();
const raw = rawClient(c);
let bucket = '';
let tmp = '';
beforeAll(async () => {
  bucket = await newBucket(c, 'cli');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'fp-s3-cli-'));
});
afterAll(() => {
  raw.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [path.resolve('dist/cli/main.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey },
  });

describe('flushpoint backup on s3://', () => {
  it('verify exits 0 on a whole backup, restore writes the WAL (equal to the original), verify exits 1 naming a missing object', async () => {
    const { walDir, lastLsn } = await backupToS3(c, bucket, 'cli/db', path.join(tmp, 'src'), { records: 120, perFlush: 40 });
    const url = `s3://${bucket}/cli/db`;
    const v = cli('backup', 'verify', url, '--endpoint', c.endpoint);
    expect(v.stderr).not.toMatch(/Error/);
    expect(v.status).toBe(0);
    expect(v.stdout).toContain(`OK: ${url}`);
    const to = path.join(tmp, 'restored');
    const r = cli('backup', 'restore', '--from', url, '--endpoint', c.endpoint, '--to', to);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`restored LSNs up to ${lastLsn}`);
    expect(await walRecords(to)).toEqual(await walRecords(walDir));
    await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'cli/db/0000000000000029-0000000000000050.fpb' }));
    const bad = cli('backup', 'verify', url, '--endpoint', c.endpoint);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('BACKUP_GAP: LSNs 41..80 are missing');
  });
});
