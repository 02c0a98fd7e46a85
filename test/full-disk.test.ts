/**
 * A real full disk (ENOSPC from ext4, not an injected fault): a 64 MiB ext4 image loop-mounted for each
 * test (test/helpers/small-disk.ts; root and a loop device needed, so skipped elsewhere with the reason,
 * and a failure instead when FLUSHPOINT_FULL_DISK=require, as .ci/run sets it).
 *
 * - An engine filled by 16 writers: every write that fails is WAL_FAILED caused by ENOSPC, its message one
 *   line naming the segment; every write acknowledged before is there after a reopen (in the same process,
 *   on the disk still full, and again after space is freed, when writes and checkpoints work again). A
 *   checkpoint on the full disk is ENGINE_CHECKPOINT_FAILED naming its file, leaves no temp file and
 *   drops no segment.
 * - A backup sink whose directory fills: forceFlush rejects with BACKUP_FAILED (ENOSPC), the checkpoint
 *   it reports verifies, and once space is freed the sink catches up with the WAL on its own.
 * - `flushpoint backup restore` onto a full disk: exit 3, one line in the restore's words naming the
 *   file, nothing left at the target or beside it; the same command once space is freed restores all.
 * - An engine reopened on a disk with not one byte free, its backup or admin socket there too: the open
 *   fails with a typed cause naming the file (BACKUP_FAILED, ADMIN_SOCKET_FAILED), not a bare ENOSPC (a
 *   full-disk review), and the same engine opens once space is freed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { BackupSink, verifyBackup } from '../backup/index.js';
import { Wal } from '../wal/index.js';
import { FlushpointError } from '../core/errors.js';
import { mountSmallDisk, smallDiskUnavailable, type SmallDisk } from './helpers/small-disk.js';
import { main } from '../cli/main.js';
import { captureIo } from './helpers/cli-fixtures.js';

const why = smallDiskUnavailable();
if (why !== null && process.env.FLUSHPOINT_FULL_DISK === 'require') throw new Error(`FLUSHPOINT_FULL_DISK=require, but ${why}`);
if (why !== null) console.log(`test/full-disk.test.ts skipped: ${why}`);

const MiB = 1024 * 1024;
const VALUE_BYTES = 4096;

let disk: SmallDisk | null = null;
const temps: string[] = [];
afterEach(() => {
  disk?.remove();
  disk = null;
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

/** The value written under key number i: its bytes say which key it belongs to. */
function valueOf(i: number): Buffer {
  const v = Buffer.alloc(VALUE_BYTES, i & 0xff);
  v.writeUInt32BE(i, 0);
  return v;
}

/** A one-line message of the file system's error, the code and the syscall said once each. */
function expectOneCleanLine(message: string, code: string): void {
  expect(message).not.toContain('\n');
  expect(message.split(`${code}: `).length - 1).toBe(1);
  expect(message).not.toMatch(/, (write|writev|fdatasync), (write|writev|fdatasync)/);
}

describe.skipIf(why !== null)('a real full disk', () => {
  it('an engine: WAL_FAILED (ENOSPC) naming the segment, every acknowledged write kept; a checkpoint fails typed and drops nothing; reopen, free space, go on', async () => {
    disk = mountSmallDisk(64);
    const filler = disk.fill('filler', 36 * MiB); // about 20 MiB left for the engine
    const location = path.join(disk.dir, 'db');
    const options = { keyEncoding: 'utf8', valueEncoding: 'buffer', wal: { segmentSizeBytes: 1 * MiB }, checkpointEveryBytes: 4 * MiB } as const;
    let db = new Engine<string, Buffer>(location, options);
    await db.open();

    const acked = new Set<number>();
    const failures: unknown[] = [];
    let next = 0;
    let stop = false;
    const writer = async (): Promise<void> => {
      while (!stop) {
        const i = next++;
        try {
          await db.put(`k${String(i).padStart(8, '0')}`, valueOf(i));
          acked.add(i);
        } catch (err) {
          failures.push(err);
          if (failures.length >= 64) stop = true;
        }
      }
    };
    const deadline = setTimeout(() => (stop = true), 45_000);
    await Promise.all(Array.from({ length: 16 }, writer));
    clearTimeout(deadline);

    expect(failures.length).toBeGreaterThan(0); // the disk did fill
    expect(acked.size).toBeGreaterThan(1000);
    for (const err of failures) {
      expect(err).toBeInstanceOf(FlushpointError);
      expect(err).toMatchObject({ code: 'WAL_FAILED', cause: { code: 'ENOSPC' } });
      const message = (err as Error).message;
      expectOneCleanLine(message, 'ENOSPC');
      expect(message).toMatch(new RegExp(`ENOSPC: no space left on device, write '${location}/wal/[0-9a-f]{16}\\.wal'$`));
    }

    // A checkpoint cannot be written: typed, its file named, no temp file left, no segment dropped.
    const segmentsBefore = fs.readdirSync(path.join(location, 'wal')).sort();
    const checkpointsBefore = fs.readdirSync(path.join(location, 'checkpoints')).sort();
    const failed = await db.checkpoint().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(FlushpointError);
    expect(failed).toMatchObject({ code: 'ENGINE_CHECKPOINT_FAILED', cause: { code: 'ENOSPC' } });
    expect((failed as FlushpointError).file).toMatch(new RegExp(`^${location}/checkpoints/`));
    expectOneCleanLine((failed as Error).message, 'ENOSPC');
    expect(fs.readdirSync(path.join(location, 'checkpoints')).sort()).toEqual(checkpointsBefore);
    expect(fs.readdirSync(path.join(location, 'wal')).sort()).toEqual(segmentsBefore);

    // close reports the failure and still closes: the same process opens the location again.
    await expect(db.close()).rejects.toMatchObject({ code: 'WAL_FAILED' });
    expect(db.status).toBe('closed');

    const readAll = async (engine: Engine<string, Buffer>): Promise<number> => {
      let wrong = 0;
      for (const i of acked) {
        const v = await engine.get(`k${String(i).padStart(8, '0')}`);
        if (v === undefined || !valueOf(i).equals(v)) wrong++;
      }
      return wrong;
    };
    db = new Engine<string, Buffer>(location, options);
    await db.open(); // on the disk still full
    expect(await readAll(db)).toBe(0);
    await db.close();

    fs.rmSync(filler);
    db = new Engine<string, Buffer>(location, options);
    await db.open();
    expect(await readAll(db)).toBe(0);
    for (let i = 0; i < 50; i++) await db.put(`after${i}`, valueOf(i));
    const { lsn } = await db.checkpoint();
    expect(lsn).toBeGreaterThanOrEqual(acked.size + 50);
    await db.close();

    db = new Engine<string, Buffer>(location, options);
    await db.open();
    expect(await readAll(db)).toBe(0);
    expect(await db.get('after49')).toEqual(valueOf(49));
    await db.close();
  });

  it('a backup sink on a full disk: forceFlush rejects with BACKUP_FAILED (ENOSPC), its checkpoint verifies, and it catches up once space is freed', async () => {
    disk = mountSmallDisk(64);
    const filler = disk.fill('filler', 44 * MiB); // about 12 MiB left for the backup
    const walDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-full-disk-wal-'));
    temps.push(walDir);
    const backupDir = path.join(disk.dir, 'backup');
    const wal = await Wal.open({ dir: walDir });
    const sink = await BackupSink.open({ wal, dir: backupDir });
    const sinkErrors: unknown[] = [];
    sink.on('error', (err) => sinkErrors.push(err));

    let stop = false;
    const writer = async (): Promise<void> => {
      while (!stop) await wal.appendDurable(valueOf(0));
    };
    const writers = Array.from({ length: 8 }, writer);
    const refusals: unknown[] = [];
    const deadline = Date.now() + 45_000;
    while (refusals.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await sink.forceFlush({ timeoutMs: 5_000 }).catch((err: unknown) => refusals.push(err));
    }
    stop = true;
    await Promise.all(writers);

    expect(refusals.length).toBe(1); // the disk did fill
    const refusal = refusals[0] as FlushpointError;
    expect(refusal).toBeInstanceOf(FlushpointError);
    expect(refusal).toMatchObject({ code: 'BACKUP_FAILED', cause: { code: 'ENOSPC' } });
    expectOneCleanLine(refusal.message, 'ENOSPC');
    expect(refusal.message).toContain(`'${backupDir}/`);
    expect(sinkErrors.length).toBeGreaterThan(0);
    const reached = sink.stats().checkpointLsn;
    expect(refusal.reachedLsn).toBeLessThanOrEqual(reached);
    expect(reached).toBeLessThan(wal.stats().durableLsn);

    // What the checkpoint claims is there, on the full disk.
    const whileFull = await verifyBackup(backupDir);
    expect(whileFull.ok).toBe(true);
    expect(whileFull.checkpointLsn).toBe(reached);

    fs.rmSync(filler);
    const { checkpointLsn } = await sink.forceFlush({ timeoutMs: 60_000 });
    expect(checkpointLsn).toBe(wal.stats().durableLsn);
    await sink.close();
    await wal.close();
    const after = await verifyBackup(backupDir);
    expect(after.ok).toBe(true);
    expect(after.checkpointLsn).toBe(checkpointLsn);
  });

  it('an engine reopened on a disk with no byte free, its backup or admin socket there too: a typed cause naming the file; it opens once space is freed', async () => {
    disk = mountSmallDisk(64);
    const location = path.join(disk.dir, 'db');
    const backupDir = path.join(disk.dir, 'backup');
    const socketPath = path.join(disk.dir, 'admin.sock');
    const first = new Engine<string, Buffer>(location, { keyEncoding: 'utf8', valueEncoding: 'buffer', backup: { dir: backupDir } });
    await first.open();
    for (let i = 0; i < 100; i++) await first.put(`k${i}`, valueOf(i));
    await first.close();
    fs.rmSync(path.join(backupDir, 'sink.lock'), { recursive: true, force: true }); // (proper-lockfile removes it on release; make sure)
    const filler = disk.fillUp('filler');

    const cases = [
      { options: { backup: { dir: backupDir } }, code: 'BACKUP_FAILED', file: backupDir },
      { options: { admin: { socketPath } }, code: 'ADMIN_SOCKET_FAILED', file: disk.dir },
    ];
    for (const { options, code, file } of cases) {
      const db = new Engine<string, Buffer>(location, { keyEncoding: 'utf8', valueEncoding: 'buffer', ...options });
      const err = await db.open().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, code).toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN', cause: { code, cause: { code: 'ENOSPC' } } });
      const cause = (err as Error).cause as FlushpointError;
      expect(cause).toBeInstanceOf(FlushpointError);
      expect(cause.file?.startsWith(file), `${cause.file} under ${file}`).toBe(true);
      expectOneCleanLine(cause.message, 'ENOSPC');
      expect(db.status).toBe('closed');
    }

    fs.rmSync(filler);
    const db = new Engine<string, Buffer>(location, { keyEncoding: 'utf8', valueEncoding: 'buffer', backup: { dir: backupDir }, admin: { socketPath } });
    await db.open();
    expect(await db.get('k99')).toEqual(valueOf(99));
    await db.close();
  });

  it('flushpoint backup restore onto a full disk: exit 3 and one line naming the file, nothing left behind; the rerun after freeing space restores all', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-full-disk-restore-'));
    temps.push(base);
    const wal = await Wal.open({ dir: path.join(base, 'wal') });
    const sink = await BackupSink.open({ wal, dir: path.join(base, 'bk') });
    for (let i = 0; i < 2000; i++) wal.append(valueOf(i).subarray(0, 1000)); // about 2 MB of log
    await sink.forceFlush();
    await sink.close();
    await wal.close();

    disk = mountSmallDisk(64);
    const filler = disk.fill('filler', disk.freeBytes() - 512 * 1024); // half a MiB left
    const to = path.join(disk.dir, 'restored');
    const io = captureIo(base);
    expect(await main(['backup', 'restore', '--from', path.join(base, 'bk'), '--to', to], io)).toBe(3);
    const line = io.err().trimEnd();
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toMatch(new RegExp(`^flushpoint backup restore: WAL_FAILED: restore into ${to} failed: ENOSPC: no space left on device, write '${to}\\.restore\\.tmp/`));
    expectOneCleanLine(line, 'ENOSPC');
    expect(fs.readdirSync(disk.dir).sort()).toEqual(['filler', 'lost+found']); // no target, no temp directory

    fs.rmSync(filler);
    expect(await main(['backup', 'restore', '--from', path.join(base, 'bk'), '--to', to], captureIo(base))).toBe(0);
    const restored = await Wal.open({ dir: to });
    expect(restored.lastLsn).toBe(2000);
    await restored.close();
  });
});
