/**
 * Checkpoints and recovery: checkpoint() while writers go on, automatic checkpoints and WAL truncation,
 * the fallback to the previous checkpoint when the newest is damaged, ENGINE_CORRUPT when none is valid
 * and the WAL no longer reaches LSN 1, the backup sink run by the engine, and a restored backup opening
 * as an engine at exactly the restored LSN.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { BackupSink, restoreBackup } from '../backup/index.js';
import { Wal } from '../wal/index.js';
import { checkpointLsnOf } from '../engine/checkpoint-file.js';
import { FaultFileSystem, MemoryFileSystem, type FileSystem } from '../fs/index.js';
import { deferred, track, turns, until } from './helpers/async.js';
import { damageFile } from './helpers/damage.js';
import { SALT_ANY, decodeRecord, recordLsn } from '../record/format.js';
import { SEGMENT_HEADER_BYTES } from '../wal/format.js';

const LOCATION = '/db';
const CKPT_DIR = `${LOCATION}/checkpoints`;
/** Small segments, so a few hundred writes span many and truncation has something to drop. */
const WAL = { segmentSizeBytes: 4096 };

function engine(fs: FileSystem, extra: ConstructorParameters<typeof Engine>[1] = {}): Engine {
  return new Engine(LOCATION, { fs, wal: WAL, ...extra });
}

async function fill(db: Engine, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await db.put(`key${String(i % 97).padStart(3, '0')}`, `value-${i}-${'x'.repeat(40)}`);
}

async function checkpointFiles(fs: FileSystem): Promise<string[]> {
  return (await fs.readdir(CKPT_DIR)).filter((n) => n.endsWith('.ckpt')).sort();
}


async function entries(db: Engine): Promise<Array<[string, string]>> {
  return db.iterator().all();
}

describe('checkpoints', () => {
  it('checkpoint() writes the state at the visible LSN; reopen loads it and replays only what came after', async () => {
    const mem = new MemoryFileSystem();
    const db = engine(mem);
    await fill(db, 0, 150);
    const r = await db.checkpoint();
    expect(r.lsn).toBe(150);
    expect(r.bytes).toBeGreaterThan(97 * 40);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    await fill(db, 150, 20);
    const expected = await entries(db);
    await db.close();
    const again = engine(mem);
    await again.open();
    expect(again.stats().recovery).toMatchObject({ checkpointLsn: 150, recordsReplayed: 20, damagedCheckpoints: [] });
    expect(await entries(again)).toEqual(expected);
    await again.close();
  });

  it('writers go on while a checkpoint is written; a crash before it is published recovers from the log', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const db = engine(fault);
    await fill(db, 0, 50);
    const gate = deferred();
    fault.inject({ op: 'datasync', path: '/checkpoints/', hold: gate.promise });
    const ckpt = track(db.checkpoint());
    await until(() => fault.counts.datasync > 0 && ckpt.outcome.state === 'pending', 'the checkpoint sync to be held');
    await db.put('during', 'checkpoint');
    expect(await db.get('during')).toBe('checkpoint');
    const image = mem.crash();
    gate.resolve();
    await ckpt.promise;
    expect(ckpt.outcome).toMatchObject({ state: 'resolved', value: { lsn: 50 } });
    await db.close();
    // The crash image has no published checkpoint (only a temp file, swept at open): WAL replay from 1.
    const crashed = engine(image);
    await crashed.open();
    expect(crashed.stats().recovery.checkpointLsn).toBe(0);
    expect(await crashed.get('during')).toBe('checkpoint');
    expect((await image.readdir(CKPT_DIR)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await crashed.close();
  });

  it('a checkpoint is never published ahead of the durable WAL: held WAL syncs, a sync:false write, a crash', async () => {
    const mem = new MemoryFileSystem();
    const fault = new FaultFileSystem(mem);
    const db = engine(fault);
    await fill(db, 0, 20);
    const durableLsn = db.wal!.durableLsn;
    // Every WAL datasync from here on waits: the next write is visible (sync:false) but not durable.
    const walGate = deferred();
    fault.inject({ op: 'datasync', path: '/wal/', hold: walGate.promise, times: Number.POSITIVE_INFINITY });
    await db.put('lost', 'in the crash', { sync: false });
    expect(await db.get('lost')).toBe('in the crash');
    expect(db.wal!.durableLsn).toBe(durableLsn);
    expect(db.wal!.stats().waiters).toBe(0);
    const ckpt = track(db.checkpoint());
    // The checkpoint either waits for the WAL (a waiter on the held sync) or, wrongly, publishes.
    await until(() => db.wal!.stats().waiters > 0 || ckpt.outcome.state !== 'pending', 'the checkpoint to wait for the WAL or finish');
    const image = mem.crash();
    fault.clearFaults();
    walGate.resolve();
    await ckpt.promise;
    await db.close();
    // The image: the WAL ends at the durable LSN, and no checkpoint claims an LSN past it.
    for (const name of await checkpointFiles(image)) expect(checkpointLsnOf(name), name).toBeLessThanOrEqual(durableLsn);
    const crashed = engine(image);
    await crashed.open();
    expect(crashed.wal!.lastLsn).toBe(durableLsn);
    expect(await crashed.get('lost')).toBeUndefined();
    expect((await crashed.keys().all()).length).toBe(20);
    await crashed.close();
  });

  it('automatic checkpoints keep two files and truncate the WAL back to the older one', async () => {
    const mem = new MemoryFileSystem();
    const db = engine(mem, { checkpointEveryBytes: 4096 });
    await fill(db, 0, 600);
    await until(() => db.stats().checkpointsWritten >= 3, 'three automatic checkpoints');
    await db.checkpoint();
    const files = await checkpointFiles(mem);
    expect(files.length).toBe(2);
    const stats = db.stats();
    expect(stats.checkpoints.map((c) => c.file)).toEqual(files);
    const older = stats.checkpoints[0]!.lsn;
    expect(stats.wal!.firstLsn).toBeGreaterThan(1);
    expect(stats.wal!.firstLsn).toBeLessThanOrEqual(older + 1);
    const expected = await entries(db);
    await db.close();
    const again = engine(mem);
    expect(await entries(again)).toEqual(expected);
    await again.close();
  });
});

describe('recovery from damage', () => {
  async function twoCheckpoints(): Promise<{ mem: MemoryFileSystem; expected: Array<[string, string]>; files: string[] }> {
    const mem = new MemoryFileSystem();
    const db = engine(mem);
    await fill(db, 0, 300);
    await db.checkpoint();
    await fill(db, 300, 300);
    await db.checkpoint();
    await fill(db, 600, 300);
    await db.checkpoint();
    await fill(db, 900, 30);
    const expected = await entries(db);
    expect(db.wal!.firstLsn).toBeGreaterThan(1);
    await db.close();
    const files = await checkpointFiles(mem);
    expect(files.length).toBe(2);
    return { mem, expected, files };
  }

  for (const how of ['flip', 'truncate'] as const) {
    it(`a ${how === 'flip' ? 'flipped byte' : 'truncation'} in the newest checkpoint falls back to the previous one`, async () => {
      const { mem, expected, files } = await twoCheckpoints();
      await damageFile(mem, `${CKPT_DIR}/${files[1]}`, how);
      const db = engine(mem);
      await db.open();
      const rec = db.stats().recovery;
      expect(rec.checkpointLsn).toBe(600);
      expect(rec.damagedCheckpoints).toHaveLength(1);
      expect(rec.damagedCheckpoints[0]).toContain(files[1]);
      expect(await entries(db)).toEqual(expected);
      await db.close();
    });
  }

  it('EMFILE is not damage: the open fails with it, not passing the checkpoint over (a session-diff review)', async () => {
    const { mem, files } = await twoCheckpoints();
    const ffs = new FaultFileSystem(mem);
    ffs.inject({ op: 'open', path: new RegExp(`${files[1]}$`), error: 'EMFILE' });
    const err = (await engine(ffs).open().then(
      () => null,
      (e: unknown) => e,
    )) as { cause?: { code?: string } } | null;
    expect(err?.cause?.code).toBe('EMFILE');
    ffs.clearFaults();
    const db = engine(ffs);
    await db.open();
    expect(db.stats().recovery.checkpointLsn).toBe(900);
    await db.close();
  });

  it('damage in every checkpoint, with the WAL no longer reaching LSN 1: ENGINE_CORRUPT naming the file', async () => {
    const { mem, files } = await twoCheckpoints();
    await damageFile(mem, `${CKPT_DIR}/${files[0]}`, 'flip');
    await damageFile(mem, `${CKPT_DIR}/${files[1]}`, 'truncate');
    const db = engine(mem);
    const err = (await db.open().then(
      () => null,
      (e: unknown) => e,
    )) as { code: string; cause: { code: string; message: string; file: string } };
    expect(err).toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN', cause: { code: 'ENGINE_CORRUPT' } });
    expect(err.cause.message).toContain(files[0]);
    expect(err.cause.message).toContain(files[1]);
    expect(err.cause.file).toContain(CKPT_DIR);
    // Nothing was changed: the WAL lock is released and a second try fails the same way.
    await expect(engine(mem).open()).rejects.toMatchObject({ cause: { code: 'ENGINE_CORRUPT' } });
  });

  it('a valid checkpoint beyond the end of the WAL is ENGINE_CORRUPT, never a silent reset', async () => {
    const mem = new MemoryFileSystem();
    const db = engine(mem);
    await fill(db, 0, 20);
    await db.checkpoint();
    await db.close();
    for (const name of await mem.readdir(`${LOCATION}/wal`)) if (/^[0-9a-f]{16}/.test(name)) await mem.unlink(`${LOCATION}/wal/${name}`);
    await expect(engine(mem).open()).rejects.toMatchObject({ cause: { code: 'ENGINE_CORRUPT' } });
  });

  it('a damaged newest checkpoint still bounds the WAL from below: a WAL cut under its LSN is ENGINE_CORRUPT, not an open at an older state (review of 2026-12-05 evening)', async () => {
    const mem = new MemoryFileSystem();
    const db = engine(mem);
    await fill(db, 0, 20);
    const { lsn } = await db.checkpoint();
    expect(lsn).toBe(20);
    await fill(db, 20, 10);
    await db.close();
    const [file] = await checkpointFiles(mem);
    await damageFile(mem, `${CKPT_DIR}/${file}`, 'flip');
    // Cut the WAL's last segment at LSN 11's record: it opens as a torn tail ending at LSN 10.
    const segs = (await mem.readdir(`${LOCATION}/wal`)).filter((n) => /^[0-9a-f]{16}\.wal$/.test(n)).sort();
    const last = `${LOCATION}/wal/${segs[segs.length - 1]}`;
    const image = mem.readFileNow(last);
    const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    let at = SEGMENT_HEADER_BYTES;
    for (;;) {
      const size = decodeRecord(image, view, at, image.byteLength, 0, SALT_ANY);
      expect(size).toBeGreaterThan(0);
      if (recordLsn(view, at) === 11) break;
      at += size;
    }
    mem.truncateNow(last, at + 10);
    const err = (await engine(mem).open().then(
      () => null,
      (e: unknown) => e,
    )) as { cause: { code: string; message: string } };
    expect(err?.cause?.code).toBe('ENGINE_CORRUPT');
    expect(err.cause.message).toContain(`${file} holds LSN 20 (damaged`);
    expect(err.cause.message).toContain('ends at LSN 10');
  });
});

describe('checkpoints the file system will not read (review of 2026-12-05 evening)', () => {
  it('a directory in the newest checkpoint\'s place is passed over like damage (EISDIR named); a file in place of checkpoints/ is ENGINE_CORRUPT naming it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-ckpt-eisdir-'));
    try {
      const location = path.join(dir, 'db');
      const db = new Engine(location, { wal: WAL });
      await db.open();
      await fill(db, 0, 300);
      await db.checkpoint();
      await fill(db, 300, 300);
      await db.checkpoint();
      await fill(db, 600, 30);
      const expected = await entries(db);
      await db.close();
      const ckpts = fs.readdirSync(path.join(location, 'checkpoints')).filter((n) => n.endsWith('.ckpt')).sort();
      expect(ckpts).toHaveLength(2);
      const newest = path.join(location, 'checkpoints', ckpts[1] as string);
      fs.rmSync(newest);
      fs.mkdirSync(newest);
      const again = new Engine(location, { wal: WAL });
      await again.open();
      const rec = again.stats().recovery;
      expect(rec.checkpointLsn).toBe(300);
      expect(rec.damagedCheckpoints).toHaveLength(1);
      expect(rec.damagedCheckpoints[0]).toContain(`${ckpts[1]} cannot be read`);
      expect(rec.damagedCheckpoints[0]).toContain('EISDIR');
      expect(await entries(again)).toEqual(expected);
      await again.close();

      fs.rmSync(path.join(location, 'checkpoints'), { recursive: true });
      fs.writeFileSync(path.join(location, 'checkpoints'), 'not a directory');
      const err = (await new Engine(location, { wal: WAL }).open().then(
        () => null,
        (e: unknown) => e,
      )) as { cause: { code: string; message: string; file: string } };
      expect(err?.cause?.code).toBe('ENGINE_CORRUPT');
      expect(err.cause.message).toContain('checkpoints is not a directory');
      expect(err.cause.file).toBe(path.join(location, 'checkpoints'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a file where a directory should be (review of 2026-12-05 evening)', () => {
  it('as the engine\'s location, or as a backup directory: WRONG_DIRECTORY naming it, not a bare ENOTDIR', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-afile-'));
    try {
      const file = path.join(dir, 'afile');
      fs.writeFileSync(file, 'a file');
      const err = (await new Engine(file).open().then(
        () => null,
        (e: unknown) => e,
      )) as { cause: { code: string; message: string; file: string } };
      expect(err?.cause).toMatchObject({ code: 'WRONG_DIRECTORY', file });
      expect(err.cause.message).toContain('is not a directory (ENOTDIR)');
      const wal = await Wal.open({ dir: path.join(dir, 'wal') });
      try {
        await expect(BackupSink.open({ wal, dir: file })).rejects.toMatchObject({ code: 'WRONG_DIRECTORY', file });
        expect(wal.stats().holds).toEqual({}); // nothing left held
      } finally {
        await wal.close();
      }
      expect(fs.readFileSync(file, 'utf8')).toBe('a file');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('backup', () => {
  it('checkpoints never truncate the WAL past the backup hold (a paused sink keeps every record it still needs)', async () => {
    const mem = new MemoryFileSystem();
    const db = engine(mem, { backup: { dir: '/bk', flushIntervalMs: 3_600_000 }, checkpointEveryBytes: 4096 });
    await fill(db, 0, 20);
    await db.backup!.forceFlush();
    const held = db.backup!.checkpointLsn;
    expect(held).toBe(20);
    db.backup!.pause();
    await fill(db, 20, 400);
    await db.checkpoint();
    await db.checkpoint();
    expect(db.stats().checkpointsWritten).toBeGreaterThanOrEqual(3);
    // Both kept checkpoints are far beyond the hold, yet the WAL still starts at or below it.
    expect(db.stats().checkpoints[0]!.lsn).toBeGreaterThan(held + 100);
    expect(db.wal!.firstLsn).toBeLessThanOrEqual(held + 1);
    const records: number[] = [];
    for await (const r of db.wal!.read({ fromLsn: held + 1, toLsn: held + 5 })) records.push(r.lsn);
    expect(records).toEqual([held + 1, held + 2, held + 3, held + 4, held + 5]);
    db.backup!.resume();
    await db.backup!.forceFlush();
    await db.checkpoint();
    await fill(db, 420, 5);
    await db.checkpoint();
    // With the hold moved on, truncation goes on too.
    expect(db.wal!.firstLsn).toBeGreaterThan(held + 1);
    await db.close();
  });

  it('runs a BackupSink, closes it before the WAL; a restore opens as an engine at exactly the restored LSN', async () => {
    const mem = new MemoryFileSystem();
    const db = engine(mem, { backup: { dir: '/bk', flushIntervalMs: 3_600_000 }, checkpointEveryBytes: 4096 });
    const states: Array<Array<[string, string]>> = [[]];
    for (let i = 0; i < 120; i++) {
      if (i % 3 === 2) await db.del(`key${String((i - 1) % 97).padStart(3, '0')}`);
      else await db.put(`key${String(i % 97).padStart(3, '0')}`, `v${i}`);
      states.push(await entries(db));
    }
    expect(db.backup).not.toBeNull();
    expect(Object.keys(db.wal!.stats().holds).some((name) => name.startsWith('backup'))).toBe(true);
    await db.close();
    // close flushed the backup: a full restore holds the final state.
    await restoreBackup({ from: '/bk', to: '/full/wal', fs: mem });
    const full = new Engine('/full', { fs: mem });
    expect(await entries(full)).toEqual(states[120]);
    expect(full.stats().visibleLsn).toBe(120);
    await full.close();
    // Point in time.
    for (const untilLsn of [1, 57, 99]) {
      await restoreBackup({ from: '/bk', to: `/pit${untilLsn}/wal`, fs: mem, untilLsn });
      const pit = new Engine(`/pit${untilLsn}`, { fs: mem });
      await pit.open();
      expect(pit.stats().visibleLsn).toBe(untilLsn);
      expect(await entries(pit)).toEqual(states[untilLsn]);
      await pit.close();
    }
    await turns(1);
  });
});
