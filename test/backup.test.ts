import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../wal/wal.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { BackupSink } from '../backup/sink.js';
import { verifyBackup } from '../backup/verify.js';
import { restoreBackup } from '../backup/restore.js';
import { FlushpointError } from '../core/errors.js';
import { equalBytes, payloadFor, readAll } from './helpers/wal-fixtures.js';
import { appendDurable, until } from './helpers/backup-fixtures.js';

const temps: string[] = [];
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A backup of LSNs 1..n (lengths vary) split over several files, on a memory fs. */
async function makeBackup(n: number, compression: 'none' | 'deflate' = 'none'): Promise<{ fs: MemoryFileSystem; files: string[]; lengths: number[] }> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 32 * 1024 });
  const sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000, segmentSizeBytesMax: 2048, compression });
  const lengths = [0];
  for (let i = 1; i <= n; i++) {
    const len = (i * 13) % 120;
    lengths.push(len);
    wal.append(payloadFor(i, len));
    if (i % 25 === 0) await sink.forceFlush();
  }
  await sink.forceFlush();
  await sink.close();
  await wal.close();
  const files = (await fs.readdir('/bk')).filter((f) => f.endsWith('.fpb'));
  return { fs, files, lengths };
}

describe('backup verify and restore', () => {
  for (const compression of ['none', 'deflate'] as const) {
    it(`round-trips through restore, and stops exactly at untilLsn (compression ${compression})`, async () => {
      const { fs, files, lengths } = await makeBackup(100, compression);
      expect(files.length).toBeGreaterThan(3);
      const v = await verifyBackup('/bk', { fs });
      expect(v).toMatchObject({ ok: true, firstLsn: 1, lastLsn: 100, checkpointLsn: 100, records: 100, problems: [] });
      for (const until of [1, 37, 50, 100]) {
        const to = `/restored-${until}`;
        const r = await restoreBackup({ from: '/bk', to, untilLsn: until, fs, segmentSizeBytes: 8192 });
        expect(r).toMatchObject({ lastLsn: until, records: until });
        const wal = await Wal.open({ dir: to, fs, segmentSizeBytes: 8192 });
        expect(wal.lastLsn).toBe(until);
        const recs = await readAll(wal);
        expect(recs.map((x) => x.lsn)).toEqual(Array.from({ length: until }, (_, i) => i + 1));
        for (const x of recs) expect(equalBytes(x.payload, payloadFor(x.lsn, lengths[x.lsn] as number))).toBe(true);
        await wal.close();
      }
      await expect(restoreBackup({ from: '/bk', to: '/r2', untilLsn: 101, fs })).rejects.toBeInstanceOf(RangeError);
      await expect(restoreBackup({ from: '/bk', to: '/restored-1', fs })).rejects.toThrow(/not empty/);
    });
  }

  it('names the file for every single-byte flip, finds truncations, and reports a missing file as a gap', async () => {
    const { fs, files } = await makeBackup(60);
    let flips = 0;
    for (const name of files) {
      const image = fs.readFileNow(`/bk/${name}`);
      for (let pos = 0; pos < image.byteLength; pos += 3) {
        const copy = fs.crash();
        copy.corrupt(`/bk/${name}`, pos, new Uint8Array([(image[pos] as number) ^ 0x01]));
        const v = await verifyBackup('/bk', { fs: copy });
        expect(v.ok, `${name}:${pos}`).toBe(false);
        const p = v.problems.find((x) => x.code === 'BACKUP_CORRUPT');
        expect(p?.file, `${name}:${pos}`).toBe(`/bk/${name}`);
        expect(p?.offset).toBeTypeOf('number');
        const err = await restoreBackup({ from: '/bk', to: '/r', fs: copy, segmentSizeBytes: 8192 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FlushpointError);
        expect((err as FlushpointError).code).toBe('BACKUP_CORRUPT');
        expect((err as FlushpointError).file).toBe(`/bk/${name}`);
        flips++;
      }
      for (const cut of [0, 10, 63, 64, image.byteLength - 1]) {
        const copy = fs.crash();
        copy.truncateNow(`/bk/${name}`, cut);
        const v = await verifyBackup('/bk', { fs: copy });
        expect(v.problems.find((x) => x.code === 'BACKUP_CORRUPT')?.file, `${name} cut at ${cut}`).toBe(`/bk/${name}`);
      }
    }
    expect(flips).toBeGreaterThan(100);
    const middle = files[Math.floor(files.length / 2)] as string;
    const copy = fs.crash();
    await copy.unlink(`/bk/${middle}`);
    const v = await verifyBackup('/bk', { fs: copy });
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.code)).toContain('BACKUP_GAP');
    const err = (await restoreBackup({ from: '/bk', to: '/r', fs: copy }).catch((e: unknown) => e)) as FlushpointError;
    expect(err.code).toBe('BACKUP_GAP');
  });

  it('a damaged CHECKPOINT is BACKUP_CORRUPT naming it', async () => {
    const { fs } = await makeBackup(10);
    const copy = fs.crash();
    copy.corrupt('/bk/CHECKPOINT', 17, new Uint8Array([0xff]));
    const v = await verifyBackup('/bk', { fs: copy });
    expect(v.problems[0]).toMatchObject({ code: 'BACKUP_CORRUPT', file: '/bk/CHECKPOINT' });
    await expect(BackupSink.open({ wal: await Wal.open({ dir: '/wal', fs: copy, segmentSizeBytes: 32 * 1024 }), dir: '/bk', fs: copy })).rejects.toMatchObject({
      code: 'BACKUP_CORRUPT',
      file: '/bk/CHECKPOINT',
    });
  });
});

describe('BackupSink lifecycle', () => {
  it('resumes from its persisted checkpoint after a restart, and holds the WAL at it', async () => {
    const fs = new MemoryFileSystem();
    let wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 4096 });
    let sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000 });
    await appendDurable(wal, 40, 100);
    await sink.forceFlush();
    await sink.close();
    await appendDurable(wal, 40, 100); // 41..80 written while no sink runs
    await wal.close();
    wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 4096 });
    sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000 });
    expect(sink.checkpointLsn).toBe(40);
    expect(wal.stats().holds['backup:/bk']).toBe(41); // the default hold name is per backup directory (issue 8 item 12)
    await wal.truncateBefore(80);
    expect(wal.firstLsn).toBeLessThanOrEqual(41); // the hold kept what the backup still needs
    const r = await sink.forceFlush();
    expect(r.checkpointLsn).toBe(80);
    await wal.truncateBefore(80);
    expect(wal.firstLsn).toBeGreaterThan(41);
    await sink.close();
    await wal.close();
    const v = await verifyBackup('/bk', { fs });
    expect(v).toMatchObject({ ok: true, lastLsn: 80, checkpointLsn: 80 });
  });

  it('on open, removes a file beyond the checkpoint that does not verify, and rewrites that range', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    let sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000 });
    await appendDurable(wal, 10);
    await sink.forceFlush();
    await sink.close();
    await appendDurable(wal, 10);
    // A damaged file for 11..20 beyond the checkpoint, as a crash mid-publish could never leave but a disk might.
    const bogus = await fs.open('/bk/000000000000000b-0000000000000014.fpb', 'w+');
    await bogus.writev([new Uint8Array(100).fill(7)], 0);
    await bogus.close();
    sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 3_600_000 });
    expect(sink.stats()).toMatchObject({ checkpointLsn: 10, adoptedOnOpen: 0, removedOnOpen: 1 });
    expect((await sink.forceFlush()).checkpointLsn).toBe(20);
    await sink.close();
    await wal.close();
    expect(await verifyBackup('/bk', { fs })).toMatchObject({ ok: true, lastLsn: 20, checkpointLsn: 20 });
  });

  it('refuses to open when the WAL already dropped records the backup needs (BACKUP_GAP)', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs, segmentSizeBytes: 2048 });
    await appendDurable(wal, 100, 100);
    await wal.truncateBefore(90);
    expect(wal.firstLsn).toBeGreaterThan(1);
    const sink = await BackupSink.open({ wal, dir: '/bk', fs }); // no checkpoint yet: starts at the WAL's first LSN
    expect(sink.checkpointLsn).toBe(wal.firstLsn - 1);
    await sink.close();
    // Now a backup whose checkpoint is behind the WAL's start:
    const fs2 = new MemoryFileSystem();
    const wal2 = await Wal.open({ dir: '/wal', fs: fs2, segmentSizeBytes: 2048 });
    const sink2 = await BackupSink.open({ wal: wal2, dir: '/bk', fs: fs2 });
    await appendDurable(wal2, 5, 10);
    await sink2.forceFlush();
    await sink2.close();
    await appendDurable(wal2, 100, 100);
    await wal2.truncateBefore(100);
    await expect(BackupSink.open({ wal: wal2, dir: '/bk', fs: fs2 })).rejects.toMatchObject({ code: 'BACKUP_GAP' });
    await wal.close();
    await wal2.close();
  });

  it('flushes on its interval and on the size cap, and reports lag', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    const sink = await BackupSink.open({ wal, dir: '/bk', fs, flushIntervalMs: 20 });
    const events: number[] = [];
    sink.on('flush', (e) => events.push(e.toLsn));
    await appendDurable(wal, 10);
    await until(() => sink.checkpointLsn === 10, 'interval flush');
    expect(events).toContain(10);
    sink.pause();
    await appendDurable(wal, 10);
    await new Promise((r) => setTimeout(r, 60));
    expect(sink.checkpointLsn).toBe(10); // paused: no automatic flush
    const s = sink.stats();
    expect(s.lag.records).toBe(10);
    expect(s.lag.oldestUnflushedAgeMs).toBeGreaterThan(0);
    sink.resume();
    await until(() => sink.checkpointLsn === 20, 'flush after resume');
    await sink.close();
    await wal.close();
    // size cap: a tiny cap and a long interval still flushes
    const fs2 = new MemoryFileSystem();
    const wal2 = await Wal.open({ dir: '/wal', fs: fs2 });
    const sink2 = await BackupSink.open({ wal: wal2, dir: '/bk', fs: fs2, flushIntervalMs: 3_600_000, segmentSizeBytesMax: 1024 });
    await appendDurable(wal2, 40, 100);
    await until(() => sink2.checkpointLsn > 0, 'size-triggered flush');
    await sink2.close();
    await wal2.close();
  });

  it('a second sink on the same directory gets BACKUP_LOCKED (memory fs)', async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open({ dir: '/wal', fs });
    const a = await BackupSink.open({ wal, dir: '/bk', fs });
    await expect(BackupSink.open({ wal, dir: '/bk', fs, holdName: 'other' })).rejects.toMatchObject({ code: 'BACKUP_LOCKED' });
    await a.close();
    const b = await BackupSink.open({ wal, dir: '/bk', fs });
    await b.close();
    await wal.close();
  });

  it('on the real disk: BACKUP_LOCKED for a second sink, and a lock left by a killed process is taken over once stale', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'flushpoint-bk-'));
    temps.push(base);
    const script = `
      import { Wal, BackupSink } from 'flushpoint';
      const wal = await Wal.open({ dir: process.argv[1] });
      await BackupSink.open({ wal, dir: process.argv[2], lockStaleMs: 2000 });
      console.log('locked');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, path.join(base, 'childwal'), path.join(base, 'bk')], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    const wal = await Wal.open({ dir: path.join(base, 'wal') });
    await expect(BackupSink.open({ wal, dir: path.join(base, 'bk'), lockStaleMs: 2000 })).rejects.toMatchObject({ code: 'BACKUP_LOCKED' });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Not yet stale: still locked.
    await expect(BackupSink.open({ wal, dir: path.join(base, 'bk'), lockStaleMs: 2000 })).rejects.toMatchObject({ code: 'BACKUP_LOCKED' });
    // Stale after 2 s without a refresh (the holder refreshed every second): retry until it is taken over.
    const killedAt = Date.now();
    let sink: BackupSink | undefined;
    while (!sink) {
      try {
        sink = await BackupSink.open({ wal, dir: path.join(base, 'bk'), lockStaleMs: 2000 });
      } catch (err) {
        expect(err).toMatchObject({ code: 'BACKUP_LOCKED' });
        if (Date.now() - killedAt > 15_000) throw new Error('the stale lock was never taken over');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(900);
    wal.append(new Uint8Array([1]));
    expect((await sink.forceFlush()).checkpointLsn).toBe(1);
    await sink.close();
    await wal.close();
    expect((await readdir(path.join(base, 'bk'))).sort()).toEqual(['0000000000000001-0000000000000001.fpb', 'CHECKPOINT']);
  });
});
