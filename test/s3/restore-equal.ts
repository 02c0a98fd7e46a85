/**
 * What the in-process backup tests on a memory file system share: records appended up to an LSN, and
 * "the restored WAL equals the source WAL", record for record.
 */
import { expect } from 'vitest';
import { restoreBackup } from '../../backup/restore.js';
import type { FileSystem } from '../../fs/file-system.js';
import { Wal } from '../../wal/wal.js';
import { payloadFor } from '../helpers/wal-fixtures.js';

/** Appends records of varied sizes until wal.lastLsn is `lastLsn`, then makes them durable. */
export async function appendUpTo(wal: Wal, lastLsn: number, salt = 0): Promise<void> {
  while (wal.lastLsn < lastLsn) wal.append(payloadFor(wal.lastLsn + 1 + salt, 40 + ((wal.lastLsn * 7) % 50)));
  await wal.sync();
}

/** The restored WAL equals `wal` record for record up to untilLsn, framing aside: LSNs and payload bytes. */
export async function expectRestoreEqualsWal(from: string, rfs: FileSystem, to: string, wal: Wal, untilLsn: number): Promise<void> {
  const r = await restoreBackup({ from, to, fs: rfs });
  expect(r.lastLsn).toBe(untilLsn);
  const want: Array<{ lsn: number; payload: Buffer }> = [];
  for await (const rec of wal.read({ toLsn: untilLsn })) want.push({ lsn: rec.lsn, payload: Buffer.from(rec.payload) });
  const restored = await Wal.open({ dir: to, fs: rfs });
  const got: Array<{ lsn: number; payload: Buffer }> = [];
  for await (const rec of restored.read()) got.push({ lsn: rec.lsn, payload: Buffer.from(rec.payload) });
  await restored.close();
  expect(got.length).toBe(want.length);
  expect(got).toEqual(want);
}
