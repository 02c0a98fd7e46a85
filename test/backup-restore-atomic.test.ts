/**
 * restoreBackup is all or nothing (issue 8 item 17): a restore that fails (EIO at any write), is
 * aborted, or loses power at any step leaves no WAL at the target that opens with a prefix, and a rerun
 * completes it. The WAL is built beside the target and renamed into place once durable.
 */
import { mkdtemp, mkdir, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../wal/wal.js';
import { FaultFileSystem, type FsOp } from '../fs/fault-file-system.js';
import { MemoryFileSystem } from '../fs/memory-file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { FlushpointError } from '../core/errors.js';
import { restoreBackup, restoreTempDir } from '../backup/restore.js';
import { BACKUP_DIR, checkRestored, makeBackup } from './backup-restore-fixtures.js';
import { gate, until } from './helpers/backup-fixtures.js';

const TARGET = '/restored';

/** What a WAL opened at `dir` holds: its last LSN, or null when the directory does not exist. */
async function lastLsnAt(fs: MemoryFileSystem, dir: string): Promise<number | null> {
  if (await fs.stat(dir).then(() => false, () => true)) return null;
  const wal = await Wal.open({ dir, fs: fs.crash() }); // on a copy: opening creates files
  const last = wal.lastLsn;
  await wal.close();
  return last;
}

const temps: string[] = [];
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('restore is atomic', () => {
  it('EIO at the Nth write, for every N: the target is absent, and a rerun restores everything', async () => {
    const { fs } = await makeBackup(120);
    const counting = new FaultFileSystem(fs.crash());
    await restoreBackup({ from: BACKUP_DIR, to: TARGET, fs: counting, segmentSizeBytes: 4096 });
    const writes = counting.counts.writev;
    expect(writes).toBeGreaterThan(3);
    let failed = 0;
    for (let nth = 1; nth <= writes; nth++) {
      const mem = fs.crash();
      const ffs = new FaultFileSystem(mem);
      ffs.inject({ op: 'writev', path: TARGET, nth, error: 'EIO' });
      const err = await restoreBackup({ from: BACKUP_DIR, to: TARGET, fs: ffs, segmentSizeBytes: 4096 }).then(
        () => null,
        (e: unknown) => e,
      );
      if (err === null) {
        await checkRestored(mem, TARGET, 1, 120); // an EIO the WAL survived (a zero-fill it replaced)
        continue;
      }
      failed++;
      expect(err, `EIO at write ${nth}`).toBeInstanceOf(FlushpointError);
      // In the restore's words, naming the file (a full-disk review: it read "WAL write failed; the log
      // refuses writes until reopened", or "WAL recovery of ... failed").
      const message = (err as Error).message;
      if ((err as FlushpointError).code === 'WAL_FAILED') {
        expect(message, `EIO at write ${nth}`).toMatch(new RegExp(`^restore into ${TARGET} failed: EIO: .*, writev? '${restoreTempDir(TARGET)}/`));
        expect(message, `EIO at write ${nth}`).not.toMatch(/refuses writes|WAL recovery/);
      }
      expect(await lastLsnAt(mem, TARGET), `EIO at write ${nth}`).toBeNull();
      // Nothing left of it: not its records, not its directory (review of 2026-12-05: it stayed, empty).
      expect(await mem.readdir(restoreTempDir(TARGET)).catch((e: NodeJS.ErrnoException) => e.code), `EIO at write ${nth}`).toBe('ENOENT');
      await restoreBackup({ from: BACKUP_DIR, to: TARGET, fs: mem, segmentSizeBytes: 4096 });
      await checkRestored(mem, TARGET, 1, 120);
    }
    expect(failed).toBeGreaterThan(writes / 2);
  });

  it('an aborted restore rejects with the signal reason, leaves no target, and the rerun works', async () => {
    const { fs } = await makeBackup(120);
    const controller = new AbortController();
    const reason = new Error('interrupted (Ctrl-C)');
    let progressCalls = 0;
    const err = await restoreBackup({
      from: BACKUP_DIR,
      to: TARGET,
      fs,
      signal: controller.signal,
      onProgress: (p) => {
        progressCalls++;
        if (p.files === 3) controller.abort(reason);
      },
    }).catch((e: unknown) => e);
    expect(err).toBe(reason);
    expect(progressCalls).toBe(3);
    expect(await lastLsnAt(fs, TARGET)).toBeNull();
    const pre = new AbortController();
    pre.abort(reason);
    await expect(restoreBackup({ from: BACKUP_DIR, to: TARGET, fs, signal: pre.signal })).rejects.toBe(reason);
    await fs.mkdir(TARGET); // the rerun also goes into an existing empty directory
    const r = await restoreBackup({ from: BACKUP_DIR, to: TARGET, fs });
    expect(r).toEqual({ lastLsn: 120, records: 120, files: 12 });
    await checkRestored(fs, TARGET, 1, 120);
  });

  it('a power loss at any step leaves the target absent or complete, and a rerun completes it', async () => {
    const { fs } = await makeBackup(60);
    const images: Array<{ where: string; fs: MemoryFileSystem }> = [];
    class Snapshotting extends FaultFileSystem {
      override async before(op: FsOp, p: string): ReturnType<FaultFileSystem['before']> {
        if (p.startsWith(TARGET)) images.push({ where: `before ${op} ${p} (step ${images.length})`, fs: fs.crash() });
        return super.before(op, p);
      }
    }
    await restoreBackup({ from: BACKUP_DIR, to: TARGET, fs: new Snapshotting(fs), untilLsn: 45, segmentSizeBytes: 4096 });
    images.push({ where: 'after the restore', fs: fs.crash() });
    expect(images.length).toBeGreaterThan(20);
    let absent = 0;
    for (const image of images) {
      const last = await lastLsnAt(image.fs, TARGET);
      if (last === null) {
        absent++;
        await restoreBackup({ from: BACKUP_DIR, to: TARGET, fs: image.fs, untilLsn: 45 });
      }
      await checkRestored(image.fs, TARGET, 1, 45).catch((e: Error) => {
        throw new Error(`${image.where}: ${e.message}`);
      });
    }
    expect(absent).toBeGreaterThan(0);
    expect(absent).toBeLessThan(images.length);
  });

  it('wrong arguments are refused before anything is written: unknown option, signal, untilLsn 0', async () => {
    const { fs } = await makeBackup(10);
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ until: 5 }, /unknown option 'until'/],
      [{ signal: 'stop' }, /signal must be an AbortSignal/],
      [{ untilLsn: 0 }, /untilLsn must be a safe integer >= 1/],
      [{ untilLsn: 11 }, /untilLsn 11 is beyond the backup's checkpoint 10: it holds LSNs 1\.\.10/],
    ];
    for (const [extra, message] of bad) {
      await expect(restoreBackup({ from: BACKUP_DIR, to: TARGET, fs, ...extra })).rejects.toThrow(message);
    }
    expect(await fs.stat(TARGET).catch(() => null)).toBeNull();
    expect(await fs.stat(restoreTempDir(TARGET)).catch(() => null)).toBeNull();
  });

  it('a second restore into the same target while one runs is WAL_LOCKED and disturbs nothing', async () => {
    const { fs } = await makeBackup(40);
    const ffs = new FaultFileSystem(fs);
    const held = gate();
    ffs.inject({ op: 'datasync', path: restoreTempDir(TARGET), hold: held.promise });
    const first = restoreBackup({ from: BACKUP_DIR, to: TARGET, fs: ffs });
    await until(() => ffs.counts.datasync > 0, 'the first restore to reach its first datasync');
    await expect(restoreBackup({ from: BACKUP_DIR, to: TARGET, fs: ffs })).rejects.toMatchObject({ code: 'WAL_LOCKED' });
    held.open();
    expect(await first).toMatchObject({ lastLsn: 40, records: 40 });
    await checkRestored(fs, TARGET, 1, 40);
  });

  it('on the real disk: into a missing or an existing empty directory; a non-empty one is refused untouched', async () => {
    const { fs } = await makeBackup(40);
    const base = await mkdtemp(path.join(os.tmpdir(), 'fp-restore-'));
    temps.push(base);
    // Copy the backup to the real disk through the FileSystem interface.
    const bk = path.join(base, 'bk');
    await mkdir(bk);
    for (const name of await fs.readdir(BACKUP_DIR)) {
      const h = await nodeFileSystem.open(path.join(bk, name), 'w+');
      await h.commit([fs.readFileNow(`${BACKUP_DIR}/${name}`)], 0, 'fdatasync');
      await h.close();
    }
    await mkdir(path.join(base, 'empty'));
    for (const to of [path.join(base, 'missing', 'wal'), path.join(base, 'empty')]) {
      const r = await restoreBackup({ from: bk, to, segmentSizeBytes: 4096 });
      expect(r.lastLsn).toBe(40);
      await checkRestored(nodeFileSystem, to, 1, 40);
      expect((await readdir(path.dirname(to))).filter((n) => n.includes('.restore'))).toEqual([]);
    }
    await expect(restoreBackup({ from: bk, to: path.join(base, 'empty') })).rejects.toThrow(/is not empty/);
    await expect(restoreBackup({ from: path.join(base, 'nope'), to: path.join(base, 'x') })).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
  });
});
