/**
 * Found by the backup review of 2026-12-05. A sink opened on another WAL's backup: only a checkpoint ahead of the WAL was
 * refused, so a sink pointed at another database's backup continued it past its checkpoint, and verify
 * and restore gave the two histories end to end. Now the backup's record at its checkpoint LSN must be
 * the WAL's (backup/adoption.ts checkSameWal), and a WAL restored from the backup still continues it.
 * And the sink's 'error' event gave a failed flush's raw cause (a bare EIO) where its waiters got
 * BACKUP_FAILED: now the same error reaches both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackupSink, restoreBackup, verifyBackup } from '../backup/index.js';
import { Wal } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-foreign-'));
  dirs.push(d);
  return d;
}

async function fill(wal: Wal, prefix: string, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) wal.append(Buffer.from(`${prefix}${i}`));
  await wal.sync();
}

async function payloads(dir: string): Promise<string[]> {
  const wal = await Wal.open({ dir });
  const out: string[] = [];
  for await (const r of wal.read({})) out.push(Buffer.from(r.payload).toString());
  await wal.close();
  return out;
}

describe('a backup of another WAL', () => {
  it('is refused with BACKUP_GAP naming the file, and left as it was', async () => {
    const root = await tempRoot();
    const bk = `${root}/bk`;
    const walA = await Wal.open({ dir: `${root}/a` });
    const sinkA = await BackupSink.open({ wal: walA, dir: bk, flushIntervalMs: 3_600_000 });
    await fill(walA, 'A', 1, 10);
    await sinkA.forceFlush();
    await sinkA.close();
    await walA.close();
    const walB = await Wal.open({ dir: `${root}/b` });
    await fill(walB, 'B', 1, 20);
    await expect(BackupSink.open({ wal: walB, dir: bk, flushIntervalMs: 3_600_000 })).rejects.toMatchObject({
      code: 'BACKUP_GAP',
      lsn: 10,
      message: expect.stringMatching(/is not this WAL's: its record at the checkpoint LSN 10 .* differs/),
    });
    await walB.close();
    expect((await verifyBackup(bk)).ok).toBe(true);
    await restoreBackup({ from: bk, to: `${root}/out` });
    expect(await payloads(`${root}/out`)).toEqual(Array.from({ length: 10 }, (_, i) => `A${i + 1}`));
  });

  it('but its own WAL reopened, and a WAL restored from it, continue it', async () => {
    const root = await tempRoot();
    const bk = `${root}/bk`;
    const wal = await Wal.open({ dir: `${root}/a` });
    const sink = await BackupSink.open({ wal, dir: bk, flushIntervalMs: 3_600_000 });
    await fill(wal, 'A', 1, 10);
    await sink.forceFlush();
    await sink.close();
    await wal.close();
    const again = await Wal.open({ dir: `${root}/a` });
    const sink2 = await BackupSink.open({ wal: again, dir: bk, flushIntervalMs: 3_600_000 });
    await fill(again, 'A', 11, 15);
    await sink2.forceFlush();
    await sink2.close();
    await again.close();
    await restoreBackup({ from: bk, to: `${root}/restored` });
    const restored = await Wal.open({ dir: `${root}/restored` });
    const sink3 = await BackupSink.open({ wal: restored, dir: bk, flushIntervalMs: 3_600_000 });
    await fill(restored, 'A', 16, 18);
    await sink3.forceFlush();
    await sink3.close();
    await restored.close();
    await restoreBackup({ from: bk, to: `${root}/out` });
    expect(await payloads(`${root}/out`)).toEqual(Array.from({ length: 18 }, (_, i) => `A${i + 1}`));
  });
});

describe("the sink's 'error' event", () => {
  it('gives a failed flush as its waiters get it: BACKUP_FAILED, the checkpoint reached, the cause attached', async () => {
    const fs = new FaultFileSystem(new MemoryFileSystem());
    const wal = await Wal.open({ dir: '/wal', fs });
    const sink = await BackupSink.open({ wal, fs, dir: '/bk', flushIntervalMs: 3_600_000 });
    const errors: Error[] = [];
    sink.on('error', (e: Error) => errors.push(e));
    await fill(wal, 'A', 1, 5);
    await sink.forceFlush();
    await fill(wal, 'A', 6, 9);
    fs.inject({ op: 'rename', path: '/bk/', error: 'EIO' });
    const waited = await sink.forceFlush().catch((e: unknown) => e);
    expect(waited).toMatchObject({ code: 'BACKUP_FAILED', reachedLsn: 5 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'FlushpointError', code: 'BACKUP_FAILED', reachedLsn: 5, cause: { code: 'EIO' } });
    await sink.forceFlush(); // the retry, now that renames work
    expect(sink.checkpointLsn).toBe(9);
    await sink.close();
    await wal.close();
  });
});
