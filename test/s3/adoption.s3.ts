/**
 * Reopening a sink on an S3 prefix after a crash between a flush's data objects and its checkpoint:
 * objects that continue the WAL are adopted; objects of another history are removed, but only after the
 * new sink took the prefix over with a conditional checkpoint, so a sink still writing there cannot
 * publish a checkpoint naming what was removed (it gets BACKUP_LOCKED).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointBytes } from '../../backup/backup-file.js';
import { copyRange } from '../../backup/flush-pipeline.js';
import { BackupSink } from '../../backup/sink.js';
import { S3Target } from '../../backup/s3-target.js';
import type { BackupTarget } from '../../backup/target.js';
import { verifyBackup } from '../../backup/verify.js';
import { realClock } from '../../core/clock.js';
import { isFlushpointError } from '../../core/errors.js';
import { Wal } from '../../wal/index.js';
import { payloadFor } from '../helpers/wal-fixtures.js';
import { cluster, newBucket, targetOptions } from './cluster.js';
import { lengthOf } from './sink-fixtures.js';

const c = cluster();
let bucket = '';
let tmp = '';
beforeAll(async () => {
  bucket = await newBucket(c, 'adopt');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'fp-s3-adopt-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function walWith(name: string, n: number, salt = 0): Promise<Wal> {
  const wal = await Wal.open({ dir: path.join(tmp, name), segmentSizeBytes: 64 * 1024 });
  for (let lsn = 1; lsn <= n; lsn++) wal.append(payloadFor(lsn + salt, lengthOf(lsn)));
  await wal.sync();
  return wal;
}

/** The target, but the flush "crashes" right before its checkpoint: the data objects are in the bucket. */
function crashBeforeCheckpoint(t: BackupTarget): BackupTarget {
  return {
    location: t.location,
    readFs: t.readFs,
    claimsByCheckpoint: t.claimsByCheckpoint,
    prepare: () => t.prepare(),
    putFile: (name, chunks) => t.putFile(name, chunks),
    getFile: (name) => t.getFile(name),
    listFiles: () => t.listFiles(),
    deleteFiles: (names) => t.deleteFiles(names),
    publishCheckpoint: () => Promise.reject(new Error('crash before the checkpoint')),
    stats: () => t.stats(),
    close: () => t.close(),
  };
}

async function flushWithoutCheckpoint(wal: Wal, t: BackupTarget, fromLsn: number, toLsn: number): Promise<void> {
  const pipeline = { wal, target: crashBeforeCheckpoint(t), compression: 'none' as const, segmentSizeBytesMax: 64 * 1024 * 1024, clock: realClock };
  await expect(copyRange(pipeline, fromLsn, toLsn, 1)).rejects.toThrow('crash before the checkpoint');
}

describe('reopening a sink on an S3 prefix', () => {
  it('adopts objects beyond the checkpoint that continue the WAL', async () => {
    const wal = await walWith('adopt', 10);
    const s1 = await BackupSink.open({ wal, target: { s3: targetOptions(c, bucket, 'adopt') }, flushIntervalMs: 3_600_000 });
    await s1.forceFlush();
    await s1.close();
    for (let lsn = 11; lsn <= 20; lsn++) wal.append(payloadFor(lsn, lengthOf(lsn)));
    await wal.sync();
    const t = new S3Target(targetOptions(c, bucket, 'adopt'));
    await t.prepare();
    await flushWithoutCheckpoint(wal, t, 11, 20);
    expect((await verifyBackup(t.location, { fs: t.readFs })).checkpointLsn).toBe(10);
    const s2 = await BackupSink.open({ wal, target: { s3: targetOptions(c, bucket, 'adopt') }, flushIntervalMs: 3_600_000 });
    expect(s2.checkpointLsn).toBe(20);
    expect(s2.stats().adoptedOnOpen).toBe(1);
    await s2.close();
    expect(await verifyBackup(t.location, { fs: t.readFs })).toMatchObject({ ok: true, checkpointLsn: 20 });
    await t.close();
    await wal.close();
  });

  it('removes an object of another history only after taking the prefix over: the sink that wrote it cannot then publish a checkpoint naming it', async () => {
    // Sink A (its target, driven by hand) has put the data object of its first flush, 1..20, and is
    // about to publish the checkpoint naming it.
    const walA = await walWith('a', 20);
    const tA = new S3Target(targetOptions(c, bucket, 'claim'));
    await tA.prepare();
    await flushWithoutCheckpoint(walA, tA, 1, 20);
    // A second sink opens on the prefix with another WAL (same LSNs, other bytes): it removes A's object.
    const walB = await walWith('b', 20, 1000);
    const sinkB = await BackupSink.open({ wal: walB, target: { s3: targetOptions(c, bucket, 'claim') }, flushIntervalMs: 3_600_000 });
    expect(sinkB.stats().removedOnOpen).toBe(1);
    expect(sinkB.checkpointLsn).toBe(0);
    // A now publishes the checkpoint for what it put: refused, never naming the removed object.
    const err = await tA.publishCheckpoint(checkpointBytes(20, 1)).then(() => null, (e: unknown) => e);
    expect(isFlushpointError(err, 'BACKUP_LOCKED')).toBe(true);
    const after = await verifyBackup(tA.location, { fs: tA.readFs });
    expect(after).toMatchObject({ ok: true, checkpointLsn: 0, files: 0 });
    await sinkB.close();
    await tA.close();
    await walA.close();
    await walB.close();
  });
});
