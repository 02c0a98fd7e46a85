/**
 * An inline checkpoint against radosgw: a child (test/fixtures/s3-inline-kill-child.mjs, on the built
 * package) forceFlushes an idle WAL twice and SIGKILLs itself the moment the second forceFlush resolves:
 * the checkpoint in the bucket carries that flush's file inline, and the file is not stored under its own
 * name (that PUT would have started on the next turn). Then:
 *   - verify and restore read the bucket as it is: the file is read from the checkpoint, restore equals
 *     the WAL byte for byte;
 *   - a sink reopened on the prefix stores the file under its name first (the same bytes), continues,
 *     and restore equals the whole WAL.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../backup/format.js';
import { S3Target } from '../../backup/s3-target.js';
import { BackupSink } from '../../backup/sink.js';
import { verifyBackup } from '../../backup/verify.js';
import { Wal } from '../../wal/index.js';
import { payloadFor } from '../helpers/wal-fixtures.js';
import { cluster, newBucket, rawClient, targetOptions, until } from './cluster.js';
import { expectRestoreEqualsWal } from './sink-fixtures.js';

const c = cluster();
const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.resolve(here, '../fixtures/s3-inline-kill-child.mjs');
let bucket = '';
let tmp = '';

beforeAll(async () => {
  bucket = await newBucket(c, 'inline');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-s3-inline-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('an inline checkpoint on radosgw', () => {
  it('the sink SIGKILLed between the inline checkpoint and its file\'s own PUT: restore equals the WAL, a reopened sink stores the file and goes on', async () => {
    const walDir = path.join(tmp, 'wal');
    const resultFile = path.join(tmp, 'result.json');
    const s3 = targetOptions(c, bucket, 'killed');
    const proc = fork(child, [walDir, resultFile, '2000'], { cwd: path.resolve(here, '../..'), env: { ...process.env, FLUSHPOINT_S3_TARGET: JSON.stringify(s3) }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    proc.on('exit', (code, signal) => (exit = { code, signal }));
    await until(async () => exit !== null, 'the child to end');
    expect(exit, stderr).toEqual({ code: null, signal: 'SIGKILL' });
    const result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as { checkpointLsn: number; durableLsn: number };
    expect(result).toEqual({ checkpointLsn: 4000, durableLsn: 4000 });

    const raw = rawClient(c);
    const reader = new S3Target(s3);
    const wal = await Wal.open({ dir: walDir, segmentSizeBytes: 1024 * 1024 });
    try {
      // The bucket as the killed sink left it: the checkpoint carries 2001..4000, not stored on its own.
      const got = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'killed/CHECKPOINT' }));
      const checkpoint = decodeCheckpoint(await got.Body!.transformToByteArray());
      expect(checkpoint.ok && checkpoint.value.checkpointLsn).toBe(4000);
      const inline = checkpoint.ok ? checkpoint.value.inline : null;
      expect(inline?.name).toBe('00000000000007d1-0000000000000fa0.fpb');
      const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: `killed/${inline!.name}` })).then(() => 'there', (err: { name?: string }) => err.name);
      expect(head).toBe('NotFound');
      // Read as it is: the file comes from the checkpoint.
      expect(await verifyBackup(reader.location, { fs: reader.readFs })).toMatchObject({ ok: true, firstLsn: 1, lastLsn: 4000, checkpointLsn: 4000, problems: [] });
      await expectRestoreEqualsWal(reader, wal, path.join(tmp, 'restored-1'), 4000);

      // A new sink on the prefix stores the file under its name (the same bytes) before anything else.
      const sink = await BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 });
      expect(sink.checkpointLsn).toBe(4000);
      const stored = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `killed/${inline!.name}` }));
      expect(Buffer.from(await stored.Body!.transformToByteArray()).equals(Buffer.from(inline!.bytes))).toBe(true);
      for (let lsn = 4001; lsn <= 4500; lsn++) wal.append(payloadFor(lsn, 20 + (lsn % 200)));
      await sink.forceFlush();
      await sink.close();
      expect(await verifyBackup(reader.location, { fs: reader.readFs })).toMatchObject({ ok: true, lastLsn: 4500, problems: [] });
      await expectRestoreEqualsWal(reader, wal, path.join(tmp, 'restored-2'), 4500);
    } finally {
      await wal.close();
      await reader.close();
      raw.destroy();
    }
  });
});
