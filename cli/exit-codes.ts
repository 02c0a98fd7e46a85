/**
 * The `flushpoint` command's exit codes: a contract for scripts and cron jobs, listed in `--help` and
 * the README. Each error the command can meet maps to exactly one of them, through its `code` (a
 * FlushpointError's, or Node's errno code for a file-system error).
 */

export const ExitCode = {
  /** Success: what was asked for is done (and durable, where that applies). */
  ok: 0,
  /** The backup or log is damaged: verify found a problem, restore met corruption or a gap. */
  damaged: 1,
  /** The command line was wrong (an unknown command or flag, a bad value, an unusable target). */
  usage: 2,
  /** A path does not exist, or an I/O error (permission, EIO, ENOSPC, a failed write or sync). */
  io: 3,
  /** The directory is locked by another process (WAL_LOCKED, BACKUP_LOCKED). */
  locked: 4,
  /** A timeout ran out before the operation was durable (FLUSH_TIMEOUT). */
  timeout: 5,
  /** A flush was already running and the request asked not to wait (FLUSH_IN_PROGRESS). */
  flushInProgress: 6,
  /** The target refused the request: it is closed or draining (WAL_CLOSED, ENGINE_DRAINING). */
  refused: 7,
  /** flushpoint cannot run here: fs-ext's native flock addon is not built (LOCK_UNAVAILABLE). */
  unavailable: 8,
  /** Any other failure with an error code. */
  failed: 9,
  /** `flushpoint admin`: the admin socket is missing, not a socket, not listened on, or not flushpoint's (ADMIN_UNREACHABLE). */
  unreachable: 10,
  /** A bug: an error without a code (FLUSHPOINT_DEBUG=1 prints its stack). */
  internal: 70,
  /** Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const byErrorCode: Readonly<Record<string, ExitCode>> = {
  BACKUP_CORRUPT: ExitCode.damaged,
  BACKUP_GAP: ExitCode.damaged,
  WAL_CORRUPT: ExitCode.damaged,
  ENGINE_CORRUPT: ExitCode.damaged,
  WAL_LOCKED: ExitCode.locked,
  BACKUP_LOCKED: ExitCode.locked,
  FLUSH_TIMEOUT: ExitCode.timeout,
  ADMIN_NO_ANSWER: ExitCode.timeout,
  FLUSH_IN_PROGRESS: ExitCode.flushInProgress,
  WAL_CLOSED: ExitCode.refused,
  ENGINE_DRAINING: ExitCode.refused,
  LOCK_UNAVAILABLE: ExitCode.unavailable,
  ADMIN_UNREACHABLE: ExitCode.unreachable,
  BACKUP_NOT_FOUND: ExitCode.io,
  WAL_FAILED: ExitCode.io,
  BACKUP_FAILED: ExitCode.io,
  ENGINE_CHECKPOINT_FAILED: ExitCode.io,
  ADMIN_SOCKET_FAILED: ExitCode.io,
};

/** Node's errno codes that mean "not there" or "the disk said no". */
const ioErrnoCodes = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EIO', 'ENOSPC', 'EDQUOT', 'EROFS', 'EEXIST', 'ENOTEMPTY', 'EMFILE', 'ENFILE', 'ELOOP', 'ENAMETOOLONG', 'EBUSY']);

/** The exit code for an error, by its `code`. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof TypeError || err instanceof RangeError) return ExitCode.usage;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return ExitCode.internal;
  if (Object.hasOwn(byErrorCode, code)) return byErrorCode[code] as ExitCode;
  if (code.endsWith('_NOT_FOUND') || ioErrnoCodes.has(code)) return ExitCode.io;
  return ExitCode.failed;
}

/** The table printed by `flushpoint --help` and copied into the README. */
export const exitCodesHelp = `exit codes:
  0    success: what was asked for is done (and durable, where that applies)
  1    the backup or log is damaged (corruption, a gap in LSNs)
  2    usage: an unknown command or flag, a bad value, an unusable target directory
  3    not found (no such path, no backup there), or an I/O error (permission, EIO, ENOSPC, a failed sync)
  4    locked by another process (WAL_LOCKED, BACKUP_LOCKED)
  5    timed out before it was durable (FLUSH_TIMEOUT), or admin had no answer in time (ADMIN_NO_ANSWER)
  6    a flush was in progress and the request asked not to wait (FLUSH_IN_PROGRESS)
  7    refused: the target is closed or draining (WAL_CLOSED, ENGINE_DRAINING)
  8    the native flock addon (fs-ext) is not built or not installed: 'npm rebuild fs-ext' or 'npm install fs-ext' (LOCK_UNAVAILABLE)
  9    any other error with a code
  10   admin: the socket is unreachable (missing, not a socket, nobody listening, not flushpoint's)
  70   internal error (a bug; FLUSHPOINT_DEBUG=1 prints the stack)
  130  stopped by Ctrl-C (SIGINT) or SIGTERM
`;
