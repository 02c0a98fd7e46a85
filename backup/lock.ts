/**
 * The backup directory lock. On the real disk: proper-lockfile (a lock directory whose mtime the holder
 * refreshes; one left by a killed process is stale after lockStaleMs and is taken over). On any other
 * FileSystem (memory, fault-injecting): the FileSystem's own exclusive lock.
 */
import lockfile from 'proper-lockfile';
import { once } from '../core/check.js';
import { FlushpointError, ErrorCode } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { NodeFileSystem } from '../fs/node-file-system.js';

export const LOCK_NAME = 'sink.lock';

export interface BackupLock {
  release(): Promise<void>;
}

export async function lockBackupDir(fs: FileSystem, dir: string, staleMs: number, onCompromised: (err: Error) => void): Promise<BackupLock> {
  const lockPath = `${dir}/${LOCK_NAME}`;
  const locked = (cause: unknown): FlushpointError =>
    new FlushpointError(ErrorCode.BACKUP_LOCKED, `backup directory ${dir} is locked by another sink (${lockPath})`, { cause, file: lockPath });
  if (fs instanceof NodeFileSystem) {
    try {
      const release = await lockfile.lock(dir, {
        lockfilePath: lockPath,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 2)),
        realpath: false,
        retries: 0,
        onCompromised,
      });
      return { release: once(() => release().catch(() => {})) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') throw locked(err);
      throw err;
    }
  }
  try {
    return await fs.lock(lockPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EWOULDBLOCK' || code === 'EAGAIN') throw locked(err);
    throw err;
  }
}
