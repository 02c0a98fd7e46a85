/**
 * A SIGKILLed sink's data PUT that radosgw applies only after a new sink listed the prefix, placed
 * deterministically: the object a killed sink's flush would have sent (test/s3/late-object.ts, the
 * sink's own pipeline) is PUT by the test right after the new sink opened, and the new sink's flush
 * covers a longer range under another name. The late object overlaps it below the checkpoint: restore
 * must still equal the WAL byte for byte and verify be ok (REDUNDANT, not damage), and the next open
 * removes the object after its claim. (test/s3/sigkill.s3.ts kills for real but waits until radosgw
 * is done with the dead connection before it reopens, so it never meets this order.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Target } from '../../backup/s3-target.js';
import { BackupSink } from '../../backup/sink.js';
import { verifyBackup } from '../../backup/verify.js';
import { Wal } from '../../wal/index.js';
import { payloadFor } from '../helpers/wal-fixtures.js';
import { cluster, newBucket, rawClient, targetOptions } from './cluster.js';
import { filesOfFlush } from './late-object.js';
import { expectRestoreEqualsWal, lengthOf } from './sink-fixtures.js';

const c = cluster();
const raw = rawClient(c);
let bucket = '';
let tmp = '';
beforeAll(async () => {
  bucket = await newBucket(c, 'late');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'fp-s3-late-'));
});
afterAll(() => {
  raw.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

async function appendUpTo(wal: Wal, lastLsn: number): Promise<void> {
  while (wal.lastLsn < lastLsn) wal.append(payloadFor(wal.lastLsn + 1, lengthOf(wal.lastLsn + 1)));
  await wal.sync();
}


describe("a killed sink's data object that lands after a new sink listed the prefix", () => {
  it('overlaps the new sink\'s longer object below the checkpoint: restore equals the WAL byte for byte, verify is ok (REDUNDANT), the next open removes it', async () => {
    const s3 = targetOptions(c, bucket, 'late');
    const wal = await Wal.open({ dir: path.join(tmp, 'wal'), segmentSizeBytes: 1024 * 1024 });
    const reader = new S3Target(s3);
    try {
      await appendUpTo(wal, 300);
      const a = await BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 });
      await a.forceFlush();
      await a.close();
      // Sink A's next flush, 301..400, is in flight when A is SIGKILLed: these are the bytes it sends.
      await appendUpTo(wal, 400);
      const late = await filesOfFlush(wal, 301, 400, 1);
      expect(late).toHaveLength(1);
      const lateKey = `late/${late[0]!.name}`;
      // Sink B opens and lists the prefix: the object is not there yet.
      const b = await BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 });
      expect(b.checkpointLsn).toBe(300);
      expect(b.stats().adoptedOnOpen).toBe(0);
      // radosgw applies the dead sink's PUT now (a plain PUT of the same bytes, as the store completes it).
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: lateKey, Body: late[0]!.bytes }));
      // B's flush covers a longer range, 301..500, under another name.
      await appendUpTo(wal, 500);
      await b.forceFlush();
      expect(b.checkpointLsn).toBe(500);
      await b.close();

      const v = await verifyBackup(reader.location, { fs: reader.readFs });
      expect(v).toMatchObject({ ok: true, firstLsn: 1, lastLsn: 500, checkpointLsn: 500, records: 500 });
      expect(v.problems).toEqual([expect.objectContaining({ code: 'REDUNDANT', file: `${reader.location}/${late[0]!.name}`, lsn: 301, lastLsn: 400 })]);
      await expectRestoreEqualsWal(reader, wal, path.join(tmp, 'restored'), 500);

      // The next open removes it (after claiming the prefix with its conditional checkpoint).
      await appendUpTo(wal, 520);
      const c2 = await BackupSink.open({ wal, target: { s3 }, flushIntervalMs: 3_600_000 });
      expect(c2.stats()).toMatchObject({ removedOnOpen: 1, adoptedOnOpen: 0, checkpointLsn: 500 });
      await c2.forceFlush();
      await c2.close();
      const gone = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: lateKey })).then(() => false, () => true);
      expect(gone).toBe(true);
      const after = await verifyBackup(reader.location, { fs: reader.readFs });
      expect(after.problems).toEqual([]);
      expect(after).toMatchObject({ ok: true, lastLsn: 520, checkpointLsn: 520, records: 520 });
      await expectRestoreEqualsWal(reader, wal, path.join(tmp, 'restored-after'), 520);
    } finally {
      await reader.close();
      await wal.close();
    }
  });
});
