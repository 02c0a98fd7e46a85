/** Backups in the test bucket: a WAL on the real disk, backed up to s3://bucket/prefix. */
import path from 'node:path';
import { expect } from 'vitest';
import { restoreBackup } from '../../backup/restore.js';
import { BackupSink } from '../../backup/sink.js';
import { S3Target } from '../../backup/s3-target.js';
import { LocalDirTarget } from '../../backup/target.js';
import { nodeFileSystem } from '../../fs/node-file-system.js';
import { Wal } from '../../wal/index.js';
import { payloadFor } from '../helpers/wal-fixtures.js';
import type { CephHandle } from './ceph.mjs';
import { targetOptions } from './cluster.js';

export const lengthOf = (lsn: number): number => 20 + ((lsn * 37) % 300);

/** Every record of the WAL in `dir`, payloads as Buffers (toEqual compares them byte for byte). */
export async function walRecords(dir: string): Promise<Array<{ lsn: number; payload: Buffer }>> {
  const wal = await Wal.open({ dir });
  try {
    const out: Array<{ lsn: number; payload: Buffer }> = [];
    for await (const r of wal.read()) out.push({ lsn: r.lsn, payload: Buffer.from(r.payload) });
    return out;
  } finally {
    await wal.close();
  }
}

/**
 * Writes `records` records to a new WAL under `dir`, backs them up with forceFlush every `perFlush`
 * records, and puts the backup into s3://bucket/prefix: data objects first, the checkpoint last.
 */
export async function backupToS3(
  c: CephHandle,
  bucket: string,
  prefix: string,
  dir: string,
  o: { records: number; perFlush: number },
): Promise<{ walDir: string; lastLsn: number; files: number }> {
  const walDir = path.join(dir, 'wal');
  const backupDir = path.join(dir, 'backup');
  const wal = await Wal.open({ dir: walDir, segmentSizeBytes: 64 * 1024 });
  const sink = await BackupSink.open({ wal, dir: backupDir, flushIntervalMs: 3_600_000 });
  for (let lsn = 1; lsn <= o.records; lsn++) {
    wal.append(payloadFor(lsn, lengthOf(lsn)));
    if (lsn % o.perFlush === 0 || lsn === o.records) await sink.forceFlush();
  }
  await sink.close();
  const lastLsn = wal.lastLsn;
  await wal.close();
  const local = new LocalDirTarget(nodeFileSystem, backupDir);
  const names = (await local.listFiles()).filter((n) => n.endsWith('.fpb')).sort();
  const target = new S3Target(targetOptions(c, bucket, prefix));
  await target.prepare();
  for (const name of names) await target.putFile(name, [(await local.getFile(name))!]);
  await target.publishCheckpoint((await local.getFile('CHECKPOINT'))!);
  await target.close();
  return { walDir, lastLsn, files: names.length };
}

/** restoreBackup from the bucket equals the WAL's records 1..untilLsn, payload for payload. */
export async function expectRestoreEqualsWal(reader: S3Target, wal: Wal, to: string, untilLsn: number): Promise<void> {
  const restored = await restoreBackup({ from: reader.location, to, fs: reader.readFs, segmentSizeBytes: 1024 * 1024 });
  expect(restored.lastLsn).toBe(untilLsn);
  const want: Array<{ lsn: number; payload: Buffer }> = [];
  for await (const rec of wal.read({ toLsn: untilLsn })) want.push({ lsn: rec.lsn, payload: Buffer.from(rec.payload) });
  const got = await walRecords(to);
  expect(got.length).toBe(want.length);
  expect(got).toEqual(want);
}
