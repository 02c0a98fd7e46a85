/**
 * The backup directory lock. On the host's disk (a FileSystem with `hostPaths`): proper-lockfile, a lock
 * directory whose mtime the holder refreshes; one left by a killed process is stale after lockStaleMs and
 * is taken over. On any other FileSystem (memory, fault-injecting): the FileSystem's own exclusive lock,
 * which dies with its holder.
 *
 * Open may wait for the lock (lockWaitMs): it retries every LOCK_RETRY_INTERVAL_MS until the holder
 * goes or its lock turns stale. The BACKUP_LOCKED error says when a lock on the host's disk turns stale.
 */
import { stat } from 'node:fs/promises';
import type lockfileModule from 'proper-lockfile';
import { once } from '../core/check.js';
import type { Clock } from '../core/clock.js';
import { FlushpointError, ErrorCode } from '../core/errors.js';
import type { FileSystem } from '../fs/file-system.js';
import { LOCK_REFRESH_MS_MIN, LOCK_RETRY_INTERVAL_MS } from './limits.js';

export const LOCK_NAME = 'sink.lock';

export interface BackupLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** A host-disk lock not refreshed for this long is stale and may be taken over, in ms. */
  staleMs: number;
  /** How long to keep trying while another holder has it, in ms (0: fail at once). */
  waitMs: number;
  clock: Clock;
  /** Called if a host-disk lock is lost while held (its refresh failed or another took it over). */
  onCompromised: (err: Error) => void;
}

/** Marks "someone else holds it" apart from other failures (which are not retried). */
class HeldElsewhere extends Error {}

export async function lockBackupDir(fs: FileSystem, dir: string, options: LockOptions): Promise<BackupLock> {
  const lockPath = `${dir}/${LOCK_NAME}`;
  const { clock } = options;
  const deadlineMs = clock.nowMs() + options.waitMs;
  for (;;) {
    try {
      return fs.hostPaths === true ? await lockOnHostDisk(dir, lockPath, options) : await fs.lock(lockPath).catch(heldElsewhere);
    } catch (err) {
      if (!(err instanceof HeldElsewhere)) throw err;
      const leftMs = deadlineMs - clock.nowMs();
      if (leftMs <= 0) throw await lockedError(fs, dir, lockPath, options, err.cause);
      // keepAlive: an open waiting for a dead holder's lock to turn stale has nothing else pending.
      await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.min(LOCK_RETRY_INTERVAL_MS, leftMs), true));
    }
  }
}

function heldElsewhere(err: unknown): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EWOULDBLOCK' || code === 'EAGAIN' || code === 'ELOCKED') throw new HeldElsewhere('locked', { cause: err });
  throw err;
}

/**
 * proper-lockfile, loaded on first use: at load it installs signal-exit's process 'exit' hook, which
 * overwrote the exit code of every process that merely imported flushpoint (an unsettled top-level
 * await exited 0 instead of 13, so a script hanging on a promise reported success).
 */
let lockfileLoaded: Promise<typeof lockfileModule> | null = null;
function loadLockfile(): Promise<typeof lockfileModule> {
  return (lockfileLoaded ??= import('proper-lockfile').then((m) => (m as { default: typeof lockfileModule }).default ?? (m as unknown as typeof lockfileModule)));
}

async function lockOnHostDisk(dir: string, lockPath: string, options: LockOptions): Promise<BackupLock> {
  const lockfile = await loadLockfile();
  const release = await lockfile
    .lock(dir, {
      lockfilePath: lockPath,
      stale: options.staleMs,
      update: Math.max(LOCK_REFRESH_MS_MIN, Math.floor(options.staleMs / 2)),
      realpath: false,
      retries: 0,
      onCompromised: options.onCompromised,
    })
    .catch(heldElsewhere);
  return { release: once(() => release().catch(() => {})) };
}

async function lockedError(fs: FileSystem, dir: string, lockPath: string, options: LockOptions, cause: unknown): Promise<FlushpointError> {
  const waited = options.waitMs > 0 ? ` (waited ${options.waitMs} ms)` : '';
  let when = 'its holder is alive (the lock is released when that process exits)';
  if (fs.hostPaths === true) {
    // proper-lockfile's holder refreshes the lock directory's mtime; stale = not refreshed for staleMs.
    const refreshedAtMs = await stat(lockPath).then((s) => s.mtimeMs, () => null);
    if (refreshedAtMs !== null) {
      const staleAtMs = refreshedAtMs + options.staleMs;
      when = `last refreshed at ${new Date(refreshedAtMs).toISOString()}: if its holder is dead the lock becomes stale at ${new Date(staleAtMs).toISOString()} (in ${Math.max(0, Math.ceil(staleAtMs - Date.now()))} ms)`;
    }
  }
  return new FlushpointError(
    ErrorCode.BACKUP_LOCKED,
    `backup directory ${dir} is locked by another sink (${lockPath})${waited}; ${when}; pass lockWaitMs to wait for it`,
    { cause, file: lockPath },
  );
}
