/**
 * restoreBackup: replays a backup into a new WAL directory holding exactly the backup's first LSN ..
 * untilLsn (default: the checkpoint), verifying every file on the way. Point-in-time: it stops exactly
 * at untilLsn.
 */
import { directoryPath } from '../core/check.js';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { Wal } from '../wal/index.js';
import { checkBackupDir, listBackupFiles, readBackupFile, readCheckpoint, type BackupCheckpoint, type BackupFileEntry } from './backup-file.js';

export interface RestoreProgress {
  files: number;
  filesTotal: number;
  records: number;
  lastLsn: number;
  untilLsn: number;
}

export interface RestoreOptions {
  /** The backup directory. */
  from: string;
  /** The new WAL directory: must be missing or empty. */
  to: string;
  /** Last LSN to restore (point in time), >= the backup's first LSN. Default: the backup's checkpoint. */
  untilLsn?: number;
  /** Called after each backup file is replayed. */
  onProgress?: (p: RestoreProgress) => void;
  /** File system for both directories. Default: the real one. */
  fs?: FileSystem;
  /** Segment size of the restored WAL, in bytes. Default: the WAL's. */
  segmentSizeBytes?: number;
}

export interface RestoreResult {
  lastLsn: number;
  records: number;
  files: number;
}

/** The restore makes its WAL durable after each this many payload bytes: bounded batches for the WAL. */
export const RESTORE_SYNC_EVERY_BYTES = 8 * 1024 * 1024;

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  if (options === null || typeof options !== 'object') throw new TypeError('restoreBackup needs an options object');
  const from = directoryPath(options.from, 'from');
  const to = directoryPath(options.to, 'to');
  if (options.untilLsn !== undefined) {
    if (typeof options.untilLsn !== 'number') throw new TypeError(`untilLsn must be a number, got ${typeof options.untilLsn}`);
    if (!Number.isSafeInteger(options.untilLsn) || options.untilLsn < 1) throw new RangeError(`untilLsn must be a safe integer >= 1 (LSN 0 means nothing), got ${options.untilLsn}`);
  }
  const fs = options.fs ?? nodeFileSystem;

  const checkpoint = await readBackupCheckpoint(fs, from);
  const { startLsn } = checkpoint;
  let untilLsn = checkpoint.checkpointLsn;
  if (options.untilLsn !== undefined) {
    const holds = checkpoint.checkpointLsn >= startLsn ? `it holds LSNs ${startLsn}..${checkpoint.checkpointLsn}` : `it holds no LSN yet (it starts at ${startLsn})`;
    if (options.untilLsn > checkpoint.checkpointLsn) throw new RangeError(`untilLsn ${options.untilLsn} is beyond the backup's checkpoint ${checkpoint.checkpointLsn}: ${holds}`);
    if (options.untilLsn < startLsn) throw new RangeError(`untilLsn ${options.untilLsn} is before the backup's first LSN ${startLsn}: ${holds}`);
    untilLsn = options.untilLsn;
  }
  await checkTargetEmpty(fs, to);
  const files = (await listBackupFiles(fs, from)).filter((f) => f.lastLsn >= startLsn && f.firstLsn <= untilLsn);

  return replay(fs, from, to, files, { startLsn, untilLsn, options });
}

/** The backup's checkpoint; BACKUP_NOT_FOUND when `from` holds no backup at all. */
async function readBackupCheckpoint(fs: FileSystem, from: string): Promise<BackupCheckpoint> {
  await checkBackupDir(fs, from);
  const checkpoint = await readCheckpoint(fs, from);
  if (checkpoint !== null) return checkpoint;
  if ((await listBackupFiles(fs, from)).length === 0) {
    throw new FlushpointError(ErrorCode.BACKUP_NOT_FOUND, `no backup at ${from}: the directory holds no CHECKPOINT and no backup file`, { file: from });
  }
  throw new FlushpointError(ErrorCode.BACKUP_CORRUPT, `${from} has no CHECKPOINT: nothing in it is known to be complete (a sink that never finished its first flush?)`, {
    file: `${from}/CHECKPOINT`,
  });
}

/** RangeError unless `to` is missing or an empty directory: a restore never touches someone's data. */
async function checkTargetEmpty(fs: FileSystem, to: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await fs.stat(to)).isDirectory;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isDirectory) throw new RangeError(`restore target ${to} is a file, not a directory`);
  if ((await fs.readdir(to)).length > 0) throw new RangeError(`restore target ${to} is not empty`);
}

/** Appends the backup's records startLsn..untilLsn to a new WAL in `dir`, and makes them durable. */
async function replay(
  fs: FileSystem,
  from: string,
  dir: string,
  files: readonly BackupFileEntry[],
  run: { startLsn: number; untilLsn: number; options: RestoreOptions },
): Promise<RestoreResult> {
  const { startLsn, untilLsn, options } = run;
  const wal = await Wal.open({ dir, fs, firstLsn: startLsn, ...(options.segmentSizeBytes ? { segmentSizeBytes: options.segmentSizeBytes } : {}) });
  let records = 0;
  let sinceSyncBytes = 0;
  let expected = startLsn;
  try {
    for (const [i, f] of files.entries()) {
      if (f.firstLsn > expected) {
        const missing = `LSNs ${expected}..${f.firstLsn - 1} are missing before ${from}/${f.name}`;
        const why = expected === startLsn ? ` (the backup starts at LSN ${startLsn}: its first file is lost)` : '';
        throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup gap: ${missing}${why}`, { file: `${from}/${f.name}`, lsn: expected });
      }
      if (f.firstLsn < expected) {
        throw new FlushpointError(ErrorCode.BACKUP_CORRUPT, `backup file ${from}/${f.name} starts at LSN ${f.firstLsn}, expected ${expected} (it overlaps, or starts before the backup's first LSN ${startLsn})`, {
          file: `${from}/${f.name}`,
          offset: 0,
          lsn: f.firstLsn,
        });
      }
      const { records: recs } = await readBackupFile(fs, from, f);
      for (const r of recs) {
        if (r.lsn > untilLsn) break;
        const lsn = wal.append(r.payload);
        assert(lsn === r.lsn, `restore assigned LSN ${lsn} to backup record ${r.lsn}`);
        records++;
        expected = r.lsn + 1;
        sinceSyncBytes += r.payload.byteLength;
        if (sinceSyncBytes >= RESTORE_SYNC_EVERY_BYTES) {
          await wal.sync();
          sinceSyncBytes = 0;
            }
      }
      options.onProgress?.({ files: i + 1, filesTotal: files.length, records, lastLsn: expected - 1, untilLsn });
    }
    if (expected <= untilLsn) {
      throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup gap: LSNs ${expected}..${untilLsn} are missing from ${from} (the checkpoint says they were backed up)`, { lsn: expected });
    }
    await wal.sync();
  } catch (err) {
    await wal.close().catch(() => {});
    throw err;
  }
  await wal.close();
  return { lastLsn: expected - 1, records, files: files.length };
}
