/**
 * A sink whose directory lock is lost (its refresh fails, or a sink that found it stale took it over)
 * stops writing to the directory: forceFlush, automatic flushes and close's final flush get
 * BACKUP_LOCKED, and nothing it holds is published over the directory's files.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackupSink } from '../backup/index.js';
import { LOCK_NAME } from '../backup/lock.js';
import { nodeFileSystem } from '../fs/index.js';
import { Wal } from '../wal/index.js';
import { until } from './helpers/async.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await fsp.rm(d, { recursive: true, force: true });
});

describe('BackupSink after losing its directory lock', () => {
  it('refuses to write with BACKUP_LOCKED and leaves the directory as it was', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'fp-locklost-'));
    dirs.push(dir);
    const wal = await Wal.open({ dir: path.join(dir, 'wal'), fs: nodeFileSystem });
    const backupDir = path.join(dir, 'backup');
    const sink = await BackupSink.open({ wal, dir: backupDir, flushIntervalMs: 3_600_000, lockStaleMs: 2000 });
    const errors: Error[] = [];
    sink.on('error', (e: Error) => errors.push(e));
    for (let i = 0; i < 5; i++) wal.append(new Uint8Array([i]));
    await wal.sync();
    await sink.forceFlush();
    expect(sink.checkpointLsn).toBe(5);
    const before = (await fsp.readdir(backupDir)).sort();
    const checkpointBefore = await fsp.readFile(path.join(backupDir, 'CHECKPOINT'));
    // Another process removes the lock (as a sink that found it stale would, before taking it).
    await fsp.rm(path.join(backupDir, LOCK_NAME), { recursive: true, force: true });
    await until(() => errors.length > 0, 'the lock refresh to notice', 10_000);
    for (let i = 0; i < 5; i++) wal.append(new Uint8Array([i]));
    await wal.sync();
    await expect(sink.forceFlush()).rejects.toMatchObject({ code: 'BACKUP_LOCKED' });
    await expect(sink.close()).rejects.toMatchObject({ code: 'BACKUP_LOCKED' });
    expect((await fsp.readdir(backupDir)).sort()).toEqual(before.filter((n) => n !== LOCK_NAME));
    expect(await fsp.readFile(path.join(backupDir, 'CHECKPOINT'))).toEqual(checkpointBefore);
    await wal.close();
  }, 20_000);
});
