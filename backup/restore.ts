/**
 * restoreBackup: replays a backup into a new WAL directory holding exactly the backup's first LSN ..
 * untilLsn (default: the checkpoint), verifying every file on the way. Point-in-time: it stops exactly
 * at untilLsn.
 *
 * Atomic: the WAL is built in a temporary directory beside the target, `<to>.restore.tmp`, made
 * durable (every segment fdatasynced, the directory fsynced), and only then renamed to `<to>`, and the
 * parent directory fsynced. A restore that fails, is aborted or loses power leaves no `<to>`, or the
 * empty directory that was there: never a WAL that opens cleanly holding a prefix. Whatever a failed run
 * left in the temporary directory is removed by the next run, so a rerun just works.
 *
 *   1. checks: the backup (CHECKPOINT, its start LSN; the chain of files, leftovers of a crash checked
 *      byte for byte against it and skipped) and the target (missing or empty)
 *   2. lock `<to>.restore.tmp/restore.lock` (one restore per target), empty the temp directory
 *   3. Wal.open(temp), append every record, wal.sync() every RESTORE_SYNC_EVERY_BYTES, close
 *   4. rename temp -> to, fsync the parent, drop the lock file
 */
import path from 'node:path';
import { directoryPath, knownOptionsOnly } from '../core/check.js';
import { RESTORE_SYNC_EVERY_BYTES } from './limits.js';
import { FlushpointError, ErrorCode, assert } from '../core/errors.js';
import { fsError, isFileSystemError, type FileSystem } from '../fs/file-system.js';
import { tempNameFor } from '../fs/durable-publish.js';
import { nodeFileSystem } from '../fs/node-file-system.js';
import { Wal } from '../wal/index.js';
import { checkBackupDir, listBackupFiles, readBackupFile, readCheckpoint, type BackupCheckpoint, type BackupFileEntry } from './backup-file.js';
import { checkLeftover, conflictError, planVerifiedChain } from './chain.js';

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
  /** The new WAL directory: must be missing or empty. It appears only once the restore is complete. */
  to: string;
  /** Last LSN to restore (point in time), >= the backup's first LSN. Default: the backup's checkpoint. */
  untilLsn?: number;
  /** Called after each backup file is replayed. */
  onProgress?: (p: RestoreProgress) => void;
  /** File system for both directories. Default: the real one. */
  fs?: FileSystem;
  /** Segment size of the restored WAL, in bytes. Default: the WAL's. */
  segmentSizeBytes?: number;
  /** Aborts the restore (Ctrl-C): it rejects with the signal's reason and leaves no target behind. */
  signal?: AbortSignal;
}

export interface RestoreResult {
  lastLsn: number;
  records: number;
  files: number;
}

export { RESTORE_SYNC_EVERY_BYTES };

/** Name of the lock file, inside the temporary directory, that keeps two restores off one target. */
export const RESTORE_LOCK_NAME = 'restore.lock';

const RESTORE_OPTIONS = ['from', 'to', 'untilLsn', 'onProgress', 'fs', 'segmentSizeBytes', 'signal'] as const;

/** Where a restore into `to` builds its WAL: beside it, so the final rename stays in one file system. */
export function restoreTempDir(to: string): string {
  return path.posix.join(path.posix.dirname(to), tempNameFor(`${path.posix.basename(to)}.restore`));
}

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  if (options === null || typeof options !== 'object') throw new TypeError('restoreBackup needs an options object');
  knownOptionsOnly(options, RESTORE_OPTIONS, 'restoreBackup');
  const from = directoryPath(options.from, 'from');
  const to = directoryPath(options.to, 'to');
  if (options.untilLsn !== undefined) {
    if (typeof options.untilLsn !== 'number') throw new TypeError(`untilLsn must be a number, got ${typeof options.untilLsn}`);
    if (!Number.isSafeInteger(options.untilLsn) || options.untilLsn < 1) throw new RangeError(`untilLsn must be a safe integer >= 1 (LSN 0 means nothing), got ${options.untilLsn}`);
  }
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  signal?.throwIfAborted();
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
  if (untilLsn < startLsn && startLsn > 1) {
    // A WAL holding no record cannot say it begins at startLsn: it would reopen as a log at LSN 1, and an
    // engine on it as an empty database. Nothing to restore is said, not restored.
    throw new FlushpointError(ErrorCode.BACKUP_GAP, `backup ${from} holds no record yet (it starts at LSN ${startLsn}, its checkpoint is ${checkpoint.checkpointLsn}): nothing to restore`, {
      lsn: startLsn,
    });
  }
  await checkTargetEmpty(fs, to);
  const files = await chainToRestore(fs, from, startLsn, untilLsn);

  const temp = restoreTempDir(to);
  const newDirsParents = await parentsToSync(fs, to);
  await fs.mkdir(temp);
  const lock = await fs.lock(`${temp}/${RESTORE_LOCK_NAME}`).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EWOULDBLOCK' && code !== 'EAGAIN') throw err;
    throw new FlushpointError(ErrorCode.WAL_LOCKED, `another restore into ${to} is running (it holds ${temp}/${RESTORE_LOCK_NAME})`, { file: `${temp}/${RESTORE_LOCK_NAME}`, cause: err });
  });
  // The lock file is unlinked only as the last step before the release: nothing touches the directory
  // after that, so a restore that takes a new lock file meanwhile cannot be disturbed.
  let lockDir = temp;
  let failed = false;
  try {
    await emptyDir(fs, temp);
    const result = await replay(fs, from, temp, files, { startLsn, untilLsn, options });
    signal?.throwIfAborted();
    // Still missing or empty? Someone may have written there meanwhile: never replace their data.
    await checkTargetEmpty(fs, to);
    await fs.rename(temp, to);
    lockDir = to;
    for (const dir of newDirsParents) await fs.syncDir(dir);
    return result;
  } catch (err) {
    // Leave nothing that could pass for a WAL: the next run would clear it anyway, but do it now.
    failed = true;
    await emptyDir(fs, temp).catch(() => {});
    throw restoreFailure(err, to);
  } finally {
    await fs
      .unlink(`${lockDir}/${RESTORE_LOCK_NAME}`)
      .then(() => fs.syncDir(lockDir))
      .catch(() => {}) // a lock file left behind is harmless: the next restore takes it, a WAL ignores it
      .finally(() => lock.release());
    // A failed restore leaves no directory either (where the file system can remove one). If another
    // restore took the directory meanwhile, its lock file is in it: ENOTEMPTY, and it stays.
    if (failed && fs.rmdir !== undefined) {
      await fs
        .rmdir(temp)
        .then(() => fs.syncDir(path.posix.dirname(temp)))
        .catch(() => {});
    }
  }
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

/**
 * The files to replay for startLsn..untilLsn, in order (chain.ts). A leftover of a crash whose records
 * the chain holds byte for byte, or that does not verify, is skipped; one with other bytes is
 * BACKUP_CORRUPT naming both files, before anything is written. When the files do not tile the range, the chain holds them all and
 * replay() names the gap or the overlap.
 */
async function chainToRestore(fs: FileSystem, from: string, startLsn: number, untilLsn: number): Promise<BackupFileEntry[]> {
  const listed = (await listBackupFiles(fs, from)).filter((f) => f.lastLsn >= startLsn && f.firstLsn <= untilLsn);
  const plan = await planVerifiedChain(fs, from, listed, startLsn, untilLsn);
  if (!plan.complete) return plan.chain;
  for (const f of plan.leftovers) {
    // Skipped when redundant, and when damaged: the chain, verified as it is read, holds every LSN.
    const v = await checkLeftover(fs, from, f, plan.path, plan.coveredLsn);
    if (v.kind === 'conflict') throw conflictError(from, f, v.other, v.lsn);
  }
  return plan.chain;
}

/**
 * The directories whose entries the restore creates: the target's parent, and, for every ancestor that
 * does not exist yet (mkdir creates it), that ancestor's parent too. Each is fsynced at the end.
 */
async function parentsToSync(fs: FileSystem, to: string): Promise<string[]> {
  const out = [path.posix.dirname(to)];
  for (let dir = out[0] as string; dir !== path.posix.dirname(dir); dir = path.posix.dirname(dir)) {
    if (await fs.stat(dir).then(() => true, () => false)) break;
    out.push(path.posix.dirname(dir));
  }
  return out;
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

/** Removes every file of the restore's temporary directory but its lock file. */
async function emptyDir(fs: FileSystem, dir: string): Promise<void> {
  let removed = 0;
  for (const name of await fs.readdir(dir)) {
    if (name === RESTORE_LOCK_NAME) continue;
    await fs.unlink(`${dir}/${name}`);
    removed++;
  }
  if (removed > 0) await fs.syncDir(dir);
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
  const { signal } = options;
  const wal = await Wal.open({ dir, fs, firstLsn: startLsn, ...(options.segmentSizeBytes ? { segmentSizeBytes: options.segmentSizeBytes } : {}) });
  let records = 0;
  let sinceSyncBytes = 0;
  let expected = startLsn;
  try {
    for (const [i, f] of files.entries()) {
      signal?.throwIfAborted();
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
      const { records: recs } = await readBackupFile(fs, from, f).catch((err: unknown) => {
        // An error of the file system itself (EISDIR, EIO, EACCES): keep its code (an I/O error), name the file.
        if (isFileSystemError(err)) {
          throw Object.assign(fsError(err.code, err.syscall ?? 'read', `${from}/${f.name}`, err.message), { cause: err });
        }
        throw err;
      });
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
          signal?.throwIfAborted();
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

/**
 * A restore's WAL_FAILED in the restore's words: the WAL's own message speaks of a log that "refuses
 * writes until reopened" and of "WAL recovery", which a user restoring a backup never asked for (a
 * full-disk review). Same code (exit 3), the file system's error and its file kept.
 */
function restoreFailure(err: unknown, to: string): unknown {
  if (!(err instanceof FlushpointError) || err.code !== ErrorCode.WAL_FAILED || !isFileSystemError(err.cause)) return err;
  const cause = err.cause;
  return new FlushpointError(ErrorCode.WAL_FAILED, `restore into ${to} failed: ${cause.message} (in the restore's temporary directory; nothing was written to ${to})`, {
    cause,
    file: cause.path,
  });
}
