/**
 * Issue 8, backup items 11, 12, 13, 15, 16, 18, 20, 22: one regression test (or a few) per item, each of
 * which failed on the code before its fix.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal } from '../wal/index.js';
import { FaultFileSystem, MemoryFileSystem } from '../fs/index.js';
import { BackupSink } from '../backup/index.js';
import { restoreBackup } from '../backup/restore.js';
import { FlushpointError } from '../core/errors.js';
import { appendDurable, gate, until } from './helpers/backup-fixtures.js';
import { sinkFixture } from './helpers/held-flush.js';
import { track, turns } from './helpers/async.js';
import { equalBytes, payloadFor, readAll } from './helpers/wal-fixtures.js';
import { tempPathPattern } from '../fs/durable-publish.js';
import { CHECKPOINT_NAME } from '../backup/format.js';

const HOUR_MS = 3_600_000;
const WAL_SEGMENT = /\.wal$/;
const CHECKPOINT_RENAME = { op: 'rename' as const, path: tempPathPattern(CHECKPOINT_NAME) };

/**
 * A backup of LSNs 1..5 (checkpoint 5) with a file for 6..10 beyond the checkpoint, as a crash between
 * the data file's publish and the checkpoint's leaves it (here: the checkpoint's rename fails).
 */
async function backupWithFileBeyondCheckpoint(): Promise<{ bmem: MemoryFileSystem; bfs: FaultFileSystem }> {
  await using fixture = await sinkFixture();
  const { wal, sink, bfs, bmem } = fixture;
  await appendDurable(wal, 5);
  await sink.forceFlush();
  await appendDurable(wal, 5);
  bfs.inject({ ...CHECKPOINT_RENAME, error: 'EIO', times: Infinity });
  await expect(sink.forceFlush()).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
  sink.pause();
  await sink.close().catch(() => {}); // its final flush fails the same way
  await wal.close();
  bfs.clearFaults();
  expect((await bmem.readdir('/backup')).filter((n) => n.endsWith('.fpb')).sort()).toEqual([
    '0000000000000001-0000000000000005.fpb',
    '0000000000000006-000000000000000a.fpb',
  ]);
  return { bmem, bfs };
}

/** A WAL holding LSNs 1..5 with the payloads the backup has (a restore to the checkpoint). */
async function walRestoredToCheckpoint(): Promise<Wal> {
  const wal = await Wal.open({ dir: '/wal', fs: new MemoryFileSystem() });
  await appendDurable(wal, 5);
  return wal;
}

async function restoredPayloads(bmem: MemoryFileSystem, to: string): Promise<Array<{ lsn: number; payload: Uint8Array }>> {
  await restoreBackup({ from: '/backup', to, fs: bmem });
  const wal = await Wal.open({ dir: to, fs: bmem });
  try {
    return await readAll(wal);
  } finally {
    await wal.close();
  }
}

describe('issue 8 item 11: adoption never pushes the checkpoint past what the WAL holds', () => {
  it('a file beyond the checkpoint and beyond the WAL durable LSN is discarded, and the new records are backed up', async () => {
    const { bmem, bfs } = await backupWithFileBeyondCheckpoint();
    const wal = await walRestoredToCheckpoint(); // durable LSN 5
    const sink = await BackupSink.open({ wal, dir: '/backup', fs: bfs, flushIntervalMs: HOUR_MS });
    expect(sink.checkpointLsn).toBe(5);
    expect(sink.stats()).toMatchObject({ adoptedOnOpen: 0, removedOnOpen: 1 });
    await appendDurable(wal, 7, 70); // new 6..12, different bytes from the old 6..10
    const r = await sink.forceFlush();
    expect(r).toMatchObject({ targetLsn: 12, checkpointLsn: 12 });
    await sink.close();
    await wal.close();
    const records = await restoredPayloads(bmem, '/restored');
    expect(records.map((x) => x.lsn)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for (const x of records) expect(equalBytes(x.payload, payloadFor(x.lsn, x.lsn <= 5 ? 50 : 70)), `LSN ${x.lsn}`).toBe(true);
  });

  it('a file whose records differ from the WAL\'s is discarded; one that matches is adopted', async () => {
    const { bmem, bfs } = await backupWithFileBeyondCheckpoint();
    const wal = await walRestoredToCheckpoint();
    await appendDurable(wal, 7, 70); // durable 12, but 6..10 differ from the file
    const sink = await BackupSink.open({ wal, dir: '/backup', fs: bfs, flushIntervalMs: HOUR_MS });
    expect(sink.checkpointLsn).toBe(5);
    expect(sink.stats()).toMatchObject({ adoptedOnOpen: 0, removedOnOpen: 1 });
    expect((await sink.forceFlush()).checkpointLsn).toBe(12);
    await sink.close();
    await wal.close();
    const records = await restoredPayloads(bmem, '/restored');
    for (const x of records) expect(equalBytes(x.payload, payloadFor(x.lsn, x.lsn <= 5 ? 50 : 70)), `LSN ${x.lsn}`).toBe(true);

    const again = await backupWithFileBeyondCheckpoint();
    const same = await walRestoredToCheckpoint();
    await appendDurable(same, 5); // the same bytes as the file's 6..10
    const adopting = await BackupSink.open({ wal: same, dir: '/backup', fs: again.bfs, flushIntervalMs: HOUR_MS });
    expect(adopting.stats()).toMatchObject({ checkpointLsn: 10, adoptedOnOpen: 1, removedOnOpen: 0 });
    await adopting.close();
    await same.close();
  });
});

describe('issue 8 item 12: two sinks on one WAL', () => {
  it('hold separately: truncation keeps what either still needs, and closing one keeps the other\'s hold', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 4096 });
    const a = await BackupSink.open({ wal, dir: '/bk-a', fs, flushIntervalMs: HOUR_MS });
    const b = await BackupSink.open({ wal, dir: '/bk-b', fs, flushIntervalMs: HOUR_MS });
    await appendDurable(wal, 100, 100);
    expect((await a.forceFlush()).checkpointLsn).toBe(100);
    await wal.truncateBefore(100);
    expect(wal.firstLsn).toBe(1); // b has copied nothing yet
    await a.close();
    await wal.truncateBefore(100);
    expect(wal.firstLsn).toBe(1);
    expect((await b.forceFlush()).checkpointLsn).toBe(100);
    await b.close();
    await wal.close();
  });

  it('refuses a second sink that asks for a hold name already held on the WAL', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    const a = await BackupSink.open({ wal, dir: '/bk-a', fs, holdName: 'offsite' });
    await expect(BackupSink.open({ wal, dir: '/bk-b', fs, holdName: 'offsite' })).rejects.toBeInstanceOf(RangeError);
    expect(wal.stats().holds.offsite).toBe(1);
    await a.close();
    await wal.close();
  });
});

describe('issue 8 item 13: a sink on an empty WAL that starts past LSN 1', () => {
  it('starts at the WAL\'s first LSN', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, firstLsn: 100 });
    const sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: HOUR_MS });
    expect(sink.checkpointLsn).toBe(99);
    await appendDurable(wal, 3);
    expect(await sink.forceFlush()).toMatchObject({ targetLsn: 102, checkpointLsn: 102 });
    expect(sink.stats().flushFailures).toBe(0);
    await sink.close();
    await wal.close();
  });
});

describe('issue 8 item 15: the backup directory and the WAL directory', () => {
  it('refuses a backup directory that is, contains or is inside the WAL directory (resolved paths)', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/data/wal', fs });
    for (const dir of ['/data/wal', '/data/wal/', '/data/./wal', '/data/x/../wal', '/data/wal/backup', '/data', '/']) {
      await expect(BackupSink.open({ wal, dir, fs }), dir).rejects.toBeInstanceOf(RangeError);
    }
    const sink = await BackupSink.open({ wal, dir: '/data/wal-backup', fs }); // a sibling with a common prefix is fine
    await sink.close();
    await wal.close();
  });
});

describe('issue 8 item 16: after the WAL fails', () => {
  it('the sink backs up everything the WAL made durable, refuses what never will be, and closes cleanly', async () => {
    await using fixture = await sinkFixture({ retryDelayMsMin: 1, retryDelayMsMax: 2 });
    const { wal, sink, wfs } = fixture;
    await appendDurable(wal, 10);
    wfs.inject({ op: 'datasync', path: WAL_SEGMENT, error: 'EIO' });
    for (let i = 0; i < 5; i++) wal.append(payloadFor(11 + i, 50));
    await expect(wal.sync()).rejects.toMatchObject({ code: 'WAL_FAILED' });
    expect(wal.durableLsn).toBe(10);
    const err = (await sink.forceFlush().catch((e: unknown) => e)) as FlushpointError;
    expect(err).toBeInstanceOf(FlushpointError);
    expect(err.code).toBe('BACKUP_FAILED');
    expect(sink.checkpointLsn).toBe(10);
    await sink.close();
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_FAILED' }); // the WAL's own close reports its failure
  });

  it('a barrier waiting when the WAL fails is rejected, and the durable records are still backed up', async () => {
    await using fixture = await sinkFixture({ retryDelayMsMin: 1, retryDelayMsMax: 2 });
    const { wal, sink, wfs } = fixture;
    await appendDurable(wal, 10);
    const walGate = gate();
    wfs.inject({ op: 'datasync', path: WAL_SEGMENT, hold: walGate.promise, error: 'EIO' });
    for (let i = 0; i < 5; i++) wal.append(payloadFor(11 + i, 50));
    const barrier = track(sink.forceFlush());
    const sync = wal.sync().catch((e: unknown) => e);
    await turns(5);
    expect(barrier.outcome.state).toBe('pending');
    walGate.open();
    expect(await sync).toMatchObject({ code: 'WAL_FAILED' });
    await barrier.promise;
    expect(barrier.outcome).toMatchObject({ state: 'rejected', reason: { code: 'BACKUP_FAILED' } });
    await until(() => sink.checkpointLsn === 10, 'the durable records to be backed up');
    await sink.close();
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_FAILED' }); // the WAL's own close reports its failure
  });
});

describe('issue 8 item 18: the WAL closed before the sink', () => {
  it('BackupSink.open refuses a failed WAL with WAL_FAILED', async () => {
    const wfs = new FaultFileSystem(new MemoryFileSystem());
    const wal = await Wal.open({ dir: '/wal', fs: wfs });
    await appendDurable(wal, 1); // the first segment is in place under its name
    wfs.inject({ op: 'datasync', path: WAL_SEGMENT, error: 'EIO' });
    wal.append(payloadFor(2, 10));
    await expect(wal.sync()).rejects.toMatchObject({ code: 'WAL_FAILED' });
    await expect(BackupSink.open({ wal, dir: '/bk', fs: new MemoryFileSystem() })).rejects.toMatchObject({ code: 'WAL_FAILED' });
    await wal.close().catch(() => {});
  });

  it('BackupSink.open refuses a closed WAL', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    await wal.close();
    await expect(BackupSink.open({ wal, dir: '/bk', fs })).rejects.toMatchObject({ code: 'WAL_CLOSED' });
  });

  it('sink.close() rejects naming the records it could not back up', async () => {
    await using fixture = await sinkFixture();
    const { wal, sink } = fixture;
    await appendDurable(wal, 10);
    await wal.close();
    const err = (await sink.close().catch((e: unknown) => e)) as FlushpointError;
    expect(err).toBeInstanceOf(FlushpointError);
    expect(err.code).toBe('BACKUP_FAILED');
    expect(err.message).toMatch(/1\.\.10/);
    expect(sink.stats().status).toBe('closed');
  });
});

describe('issue 8 item 20: adoption and I/O errors', () => {
  it('an EIO reading a file beyond the checkpoint fails the open and keeps the file', async () => {
    const { bmem, bfs } = await backupWithFileBeyondCheckpoint();
    const wal = await walRestoredToCheckpoint();
    await appendDurable(wal, 5); // the same records: the file would be adopted
    bfs.inject({ op: 'read', path: /0000000000000006-000000000000000a\.fpb$/, error: 'EIO' });
    const err = (await BackupSink.open({ wal, dir: '/backup', fs: bfs }).catch((e: unknown) => e)) as FlushpointError;
    expect(err).toBeInstanceOf(FlushpointError);
    expect(err.code).toBe('BACKUP_FAILED');
    expect((err.cause as NodeJS.ErrnoException).code).toBe('EIO');
    expect(await bmem.readdir('/backup')).toContain('0000000000000006-000000000000000a.fpb');
    const sink = await BackupSink.open({ wal, dir: '/backup', fs: bfs }); // the lock was released; the fault is gone
    expect(sink.stats()).toMatchObject({ checkpointLsn: 10, adoptedOnOpen: 1 });
    await sink.close();
    await wal.close();
  });
});

describe('issue 8 item 22: waiting for the backup lock', () => {
  it('lockWaitMs: open waits for the holder to go, instead of failing at once (memory fs)', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    const a = await BackupSink.open({ wal, dir: '/bk', fs, holdName: 'a' });
    const b = track(BackupSink.open({ wal, dir: '/bk', fs, holdName: 'b', lockWaitMs: HOUR_MS }));
    await turns(20);
    expect(b.outcome.state).toBe('pending');
    await a.close();
    await b.promise;
    expect(b.outcome.state).toBe('resolved');
    await (b.outcome as { value: BackupSink }).value.close();
    await wal.close();
  });

  it('on the real disk, after a SIGKILL: the error says when the lock becomes stale, and lockWaitMs waits for it', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-bk-'));
    try {
      const script = `
        import { Wal, BackupSink } from 'flushpoint';
        const wal = await Wal.open({ dir: process.argv[1] });
        await BackupSink.open({ wal, dir: process.argv[2], lockStaleMs: 4000 });
        console.log('locked');
        setInterval(() => {}, 1000);
      `;
      const bk = path.join(base, 'bk');
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, path.join(base, 'childwal'), bk], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
        child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      const wal = await Wal.open({ dir: path.join(base, 'wal') });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // The child refreshed its lock every 2 s: it is stale 2..4 s after the kill, not yet now.
      const err = (await BackupSink.open({ wal, dir: bk, lockStaleMs: 4000 }).catch((e: unknown) => e)) as FlushpointError;
      expect(err).toMatchObject({ code: 'BACKUP_LOCKED' });
      expect(err.message).toMatch(/stale at .* \(in \d+ ms\)/);
      expect(err.message).toMatch(/lockWaitMs/);
      const sink = await BackupSink.open({ wal, dir: bk, lockStaleMs: 4000, lockWaitMs: 30_000 });
      wal.append(new Uint8Array([1]));
      expect((await sink.forceFlush()).checkpointLsn).toBe(1);
      await sink.close();
      await wal.close();
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});

describe('BackupSink options', () => {
  it('refuses an unknown option name (a misspelt one would be ignored silently), naming it', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    await expect(BackupSink.open({ wal, dir: '/bk', fs, lockWait: 1000 } as never)).rejects.toThrow(TypeError);
    await expect(BackupSink.open({ wal, dir: '/bk', fs, flushInterval: 5 } as never)).rejects.toThrow(/flushInterval/);
    expect(wal.stats().holds).toEqual({});
    await wal.close();
  });

  it('forceFlush refuses a misspelt option (timeout, timeoutMS, mdoe) with TypeError instead of running a default barrier', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    const sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000 });
    wal.append(new Uint8Array([1]));
    await wal.sync();
    for (const bad of [{ timeout: 5 }, { timeoutMS: 5 }, { mdoe: 'reject' }]) {
      await expect(sink.forceFlush(bad as never)).rejects.toThrow(new RegExp(`unknown option '${Object.keys(bad)[0]}'`));
    }
    expect(sink.stats().flushes).toBe(0);
    await sink.close();
    await wal.close();
  });
});
